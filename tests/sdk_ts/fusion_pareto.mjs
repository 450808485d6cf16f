// The fusion plugin and the pareto router through @openrouter/sdk, which validates each answer with its
// zod schemas. Run by tests/test_pareto_router.py: reads {serverURL, apiKey, panel, finalModel,
// paretoModel} as JSON on stdin and prints one JSON line per check, {"operation", "ok", "error"?}, as
// conformance.mjs does. conformance.mjs may import `fusionParetoSteps(config)` instead.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

export function fusionParetoSteps({ serverURL, apiKey, panel, finalModel, paretoModel }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const messages = [{ role: "user", content: "reverse a list" }];
  const fusion = [{ id: "fusion", analysisModels: panel }];
  const pareto = [{ id: "pareto-router", minCodingScore: 0.8 }];
  return {
    "fusion.chat.send": async () => {
      const res = await sdk.chat.send({ chatRequest: { model: finalModel, messages, plugins: fusion } });
      check(res.model === finalModel && res.choices[0].message.content === "Echo: reverse a list", "the answer", res);
      check(res.usage.cost > 0, "the final call's cost", res.usage);
    },
    "fusion.chat.send(stream)": async () => {
      const stream = await sdk.chat.send({ chatRequest: { model: finalModel, messages, plugins: fusion, stream: true } });
      let text = "";
      let last;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        last = chunk;
      }
      check(text === "Echo: reverse a list" && last.usage.cost > 0, "streamed answer and usage", [text, last]);
    },
    "pareto.chat.send": async () => {
      const res = await sdk.chat.send({ chatRequest: { model: "openrouter/pareto-code", messages, plugins: pareto } });
      check(res.model === paretoModel, "the cheapest model scoring at least 0.8", res.model);
    },
    "pareto.models.list": async () => {
      const page = await sdk.models.list();
      const chosen = page.result.data.find((m) => m.id === paretoModel);
      check(chosen?.benchmarks?.artificialAnalysis?.codingIndex === 90, "its coding index", chosen?.benchmarks);
    },
  };
}

await runIfMain(import.meta.url, fusionParetoSteps);
