// The response-healing, context-compression and moderation plugins through @openrouter/sdk, which
// validates each answer (and each typed error) with its zod schemas. Run by tests/test_plugin_*.py:
// reads {serverURL, apiKey, healing?, compression?, moderation?} as JSON on stdin and runs the steps of
// the parts given; prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
//   healing: {model, expected}: the fake model answers broken JSON; `expected` is the healed object
//   compression: {model, turns}: a prompt of `turns` messages too long for the model's context
//   moderation: {model, flagged, reasons}: `flagged` is input the moderation API flags for `reasons`
// conformance.mjs may import `guardPluginSteps(config)` instead.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

export function guardPluginSteps({ serverURL, apiKey, healing, compression, moderation }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const steps = {};
  if (healing) {
    const { model, expected } = healing;
    const plugins = [{ id: "response-healing" }];
    const messages = [{ role: "user", content: "Give me Ada as JSON" }];
    steps["healing.chat.send"] = async () => {
      const res = await sdk.chat.send({
        chatRequest: { model, messages, plugins, responseFormat: { type: "json_object" } },
      });
      check(same(JSON.parse(res.choices[0].message.content), expected), "the healed JSON", res.choices[0].message);
    };
    steps["healing.responses.send"] = async () => {
      const res = await sdk.responses.send({
        responsesRequest: { model, input: messages[0].content, plugins, text: { format: { type: "json_object" } } },
      });
      const part = res.output.find((item) => item.type === "message").content[0];
      check(same(JSON.parse(part.text), expected), "the healed JSON", part);
    };
  }
  if (compression) {
    const { model, turns } = compression;
    const messages = Array.from({ length: turns }, (_, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content: `turn ${i}: ${"x".repeat(400)}`,
    }));
    steps["compression.chat.send"] = async () => {
      const res = await sdk.chat.send({
        chatRequest: { model, messages, plugins: [{ id: "context-compression", engine: "middle-out" }] },
      });
      check(typeof res.choices[0].message.content === "string", "an answer", res.choices[0]);
    };
    steps["compression.off.chat.send"] = async () => {
      const err = await sdk.chat.send({
        chatRequest: { model, messages, plugins: [{ id: "context-compression", enabled: false }] },
      }).then(() => null, (e) => e);
      check(err?.name === "BadRequestResponseError" && err.error.message.includes("middle-out"),
        "400 suggesting compression", String(err));
    };
  }
  if (moderation) {
    const { model, flagged, reasons } = moderation;
    const plugins = [{ id: "moderation" }];
    const refused = (err, what) => {
      check(err?.name === "ForbiddenResponseError", what, String(err));
      const metadata = err.error.metadata;
      check(same(metadata.reasons, reasons) && metadata.flagged_input === flagged && metadata.model_slug === model,
        "ModerationErrorMetadata", metadata);
    };
    steps["moderation.chat.send"] = async () => {
      const err = await sdk.chat.send({
        chatRequest: { model, plugins, messages: [{ role: "user", content: flagged }] },
      }).then(() => null, (e) => e);
      refused(err, "403 for flagged chat input");
    };
    steps["moderation.responses.send"] = async () => {
      const err = await sdk.responses.send({ responsesRequest: { model, plugins, input: flagged } })
        .then(() => null, (e) => e);
      refused(err, "403 for flagged responses input");
    };
  }
  return steps;
}

await runIfMain(import.meta.url, guardPluginSteps);
