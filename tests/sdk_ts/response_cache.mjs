// The response cache through @openrouter/sdk, which validates each answer with its zod schemas. Run by
// tests/test_response_cache.py: reads {serverURL, apiKey, model, prompt, answer} as JSON on stdin and
// prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does. The first ask
// is a miss (billed), the others hits (free, usage 0, a new generation); the Python side counts the
// upstream's requests. conformance.mjs may import `responseCacheSteps(config)` instead.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

export function responseCacheSteps({ serverURL, apiKey, model, prompt, answer }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const chatRequest = { model, messages: [{ role: "user", content: prompt }] };
  const cached = { headers: { "X-Omnirouter-Cache-TTL": "120" } };
  const ids = {};
  return {
    "cache.chat.send(miss)": async () => {
      const res = await sdk.chat.send({ chatRequest }, cached);
      check(res.choices[0].message.content === answer && res.usage.cost > 0, "a billed answer", res);
      ids.miss = res.id;
    },
    "cache.chat.send(hit)": async () => {
      const res = await sdk.chat.send({ chatRequest }, cached);
      check(res.choices[0].message.content === answer, "the stored answer", res);
      check(res.usage.cost === 0 && res.usage.promptTokens === 0 && res.usage.completionTokens === 0, "free", res.usage);
      check(res.id !== ids.miss, "a new generation", res.id);
      ids.hit = res.id;
    },
    "cache.chat.send(hit, stream)": async () => {
      const stream = await sdk.chat.send({ chatRequest: { ...chatRequest, stream: true } }, cached);
      let text = "";
      let last;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        last = chunk;
      }
      check(text === answer && last.usage.cost === 0 && last.usage.totalTokens === 0, "a free stream", [text, last]);
    },
    "cache.generations.getGeneration(hit)": async () => {
      const res = await sdk.generations.getGeneration({ id: ids.hit });
      check(res.data.id === ids.hit && res.data.totalCost === 0 && res.data.tokensPrompt === 0, "the hit's record", res);
    },
  };
}

await runIfMain(import.meta.url, responseCacheSteps);
