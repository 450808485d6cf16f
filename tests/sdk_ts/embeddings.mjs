// POST /embeddings and GET /embeddings/models through @openrouter/sdk (zod-validated answers), and
// @openrouter/ai-sdk-provider's embedding model with the AI SDK's `embed` and `embedMany`. Run by
// tests/test_embeddings.py: reads {serverURL, apiKey, embedModel?, upstreamModel?} as JSON on stdin (the
// model defaults to sandbox/embed; the upstream check runs only when a fake-served model is named) and
// prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
import { OpenRouter } from "@openrouter/sdk";
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { cosineSimilarity, embed, embedMany } from "ai";
import { check, readConfig, runSteps } from "./steps.mjs";

const config = await readConfig();
const { serverURL, apiKey, upstreamModel } = config;
const model = config.embedModel ?? "sandbox/embed";
const sdk = new OpenRouter({ apiKey, serverURL });
const provider = createOpenRouter({ apiKey, baseURL: serverURL });
const texts = ["red apples in a bowl", "green apples in a bowl", "the blue sky at night"];
const PRICE = 0.0000001; // sandbox/embed, USD per input token

const near = (a, b) => Math.abs(a - b) < 1e-12;
const words = (t) => t.split(/\s+/).length;

export const steps = {
  "embeddings.generate": async () => {
    const res = await sdk.embeddings.generate({ requestBody: { model, input: texts, inputType: "search_document" } });
    check(typeof res === "object" && res.object === "list" && res.model === model, "an embeddings list", res);
    check(res.data.length === 3 && res.data.every((d, i) => d.index === i && Array.isArray(d.embedding)), "data", res.data);
    const [a, b, c] = res.data.map((d) => d.embedding);
    check(cosineSimilarity(a, b) > cosineSimilarity(a, c), "shared words are closer", [a.length]);
    const tokens = texts.map(words).reduce((x, y) => x + y);
    check(res.usage.promptTokens === tokens && near(res.usage.cost, tokens * PRICE), "usage and cost", res.usage);
    const b64 = await sdk.embeddings.generate({ requestBody: { model, input: "red apples", encodingFormat: "base64" } });
    const floats = new Float32Array(new Uint8Array(Buffer.from(b64.data[0].embedding, "base64")).buffer);
    check(floats.length === 256 && Math.abs(Math.hypot(...floats) - 1) < 1e-5, "base64 float32, unit length", floats.length);
  },
  "embeddings.listModels": async () => {
    const page = await sdk.embeddings.listModels();
    const ids = page.result.data.map((m) => m.id);
    check(ids.includes(model) && !ids.includes("sandbox/echo"), "embeddings models only", ids);
  },
  "embeddings.upstream": upstreamModel && (async () => {
    const res = await sdk.embeddings.generate({ requestBody: { model: upstreamModel, input: texts[0], dimensions: 32 } });
    check(res.data[0].embedding.length === 32 && res.usage.promptTokens === words(texts[0]), "an upstream's vector", res);
  }),
  "ai.embed": async () => {
    const { embedding, usage } = await embed({ model: provider.textEmbeddingModel(model), value: texts[0] });
    check(embedding.length === 256 && usage.tokens === words(texts[0]), "one embedding", { n: embedding.length, usage });
  },
  "ai.embedMany": async () => {
    const { embeddings, usage } = await embedMany({ model: provider.textEmbeddingModel(model), values: texts });
    check(embeddings.length === 3 && cosineSimilarity(embeddings[0], embeddings[1]) > cosineSimilarity(embeddings[0], embeddings[2]),
      "many, in order", embeddings.length);
    check(usage.tokens === texts.map(words).reduce((x, y) => x + y), "their tokens", usage);
  },
  // Error answers must parse as the SDK's typed errors.
  "errors": async () => {
    const failure = (promise) => promise.then(() => null, (err) => err);
    const cases = [
      ["BadRequestResponseError", failure(sdk.embeddings.generate({ requestBody: { model, input: [] } }))],
      ["BadRequestResponseError", failure(sdk.embeddings.generate({ requestBody: { model: "test/typo", input: "x" } }))],
      ["UnauthorizedResponseError", failure(new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL })
        .embeddings.generate({ requestBody: { model, input: "x" } }))],
    ];
    for (const [expected, pending] of cases) {
      const err = await pending;
      check(err?.name === expected, expected, String(err));
    }
  },
};

if (import.meta.url === `file://${process.argv[1]}`) await runSteps(steps);
