// POST /rerank through @openrouter/sdk, which validates each answer with its zod schemas. Run by
// tests/test_rerank.py: reads {serverURL, apiKey, rerankModel?, cohereModel?} as JSON on stdin (the
// rerank model defaults to sandbox/rerank; the Cohere check runs only when a Cohere-served model is
// named) and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
// conformance.mjs may import `rerankSteps(config)` instead: importing this module reads nothing.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

const documents = [
  "Berlin is the capital of Germany.",
  "Paris is the capital of France.",
  "Bananas are yellow.",
  { text: "France is a country in Europe." },
];

export function rerankSteps({ serverURL, apiKey, rerankModel, cohereModel }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const model = rerankModel ?? "sandbox/rerank";
  const steps = {
    "rerank.rerank": async () => {
      const res = await sdk.rerank.rerank({
        requestBody: { model, query: "What is the capital of France?", documents, topN: 3 },
      });
      check(typeof res === "object" && res.model === model && res.id.startsWith("gen-"), "a rerank answer", res);
      check(res.results.map((r) => r.index).join() === "1,0,3", "best first, top 3", res.results);
      check(res.results[0].document.text === documents[1] && res.results[2].document.text === documents[3].text,
        "the documents echoed", res.results);
      const scores = res.results.map((r) => r.relevanceScore);
      check(scores.every((s, i) => i === 0 || s <= scores[i - 1]), "scores descending", scores);
      check(res.usage.searchUnits === 1 && res.usage.cost === 0.002 && res.usage.totalTokens > 0, "usage", res.usage);
    },
  };
  if (cohereModel) {
    steps["rerank.upstream"] = async () => {
      const res = await sdk.rerank.rerank({
        requestBody: { model: cohereModel, query: "capital of France", documents: documents.slice(0, 3), topN: 1 },
      });
      check(res.provider === "Cohere" && res.results.length === 1 && res.results[0].index === 1, "Cohere's best", res);
      check(res.usage.searchUnits === 1 && res.usage.cost === 0.002, "one search unit", res.usage);
    };
  }
  // Error answers must parse as the SDK's typed errors.
  steps["rerank.errors"] = async () => {
    const failure = (promise) => promise.then(() => null, (err) => err);
    const cases = [
      ["BadRequestResponseError", failure(sdk.rerank.rerank({ requestBody: { model, query: "q", documents: [] } }))],
      ["BadRequestResponseError",
        failure(sdk.rerank.rerank({ requestBody: { model: "test/typo", query: "q", documents } }))],
      ["UnauthorizedResponseError", failure(new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL })
        .rerank.rerank({ requestBody: { model, query: "q", documents } }))],
    ];
    for (const [expected, pending] of cases) {
      const err = await pending;
      check(err?.name === expected, expected, String(err));
    }
  };
  return steps;
}

await runIfMain(import.meta.url, rerankSteps);
