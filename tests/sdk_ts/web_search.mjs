// The web plugin through @openrouter/sdk, which validates each answer with its zod schemas. Run by
// tests/test_plugin_web.py: reads {serverURL, apiKey, model, cited, urls, cost} as JSON on stdin
// (the fake model answers `cited`, a text citing urls[0]; `cost` is each answer's usage.cost) and
// prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
// conformance.mjs may import `webSearchSteps(config)` instead.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

export function webSearchSteps({ serverURL, apiKey, model, cited, urls, cost }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const messages = [{ role: "user", content: "What happened at the launch?" }];
  const plugins = [{ id: "web", maxResults: urls.length }];
  return {
    "web.chat.send": async () => {
      const res = await sdk.chat.send({ chatRequest: { model, messages, plugins } });
      check(res.choices[0].message.content === cited, "the answer", res.choices[0].message);
      check(res.usage.cost === cost, "the cost with the search fee", res.usage);
    },
    "web.chat.send(stream)": async () => {
      const stream = await sdk.chat.send({ chatRequest: { model, messages, plugins, stream: true } });
      let text = "";
      let last;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        last = chunk;
      }
      check(text === cited && last.usage.cost === cost, "streamed answer and cost", [text, last]);
    },
    "web.responses.send": async () => {
      const res = await sdk.responses.send({ responsesRequest: { model, input: messages[0].content, plugins } });
      const part = res.output.find((item) => item.type === "message").content[0];
      check(part.text === cited, "the answer", part);
      check(JSON.stringify(part.annotations.map((a) => [a.type, a.url])) ===
        JSON.stringify(urls.map((u) => ["url_citation", u])), "url_citation annotations", part.annotations);
      const first = part.annotations[0];
      check(cited.slice(first.startIndex, first.endIndex).includes(urls[0]), "the cited span", first);
      check(res.usage.cost === cost, "the cost", res.usage);
    },
    "web.responses.send(stream)": async () => {
      const stream = await sdk.responses.send({
        responsesRequest: { model, input: messages[0].content, plugins, stream: true },
      });
      const added = [];
      let last;
      for await (const event of stream) {
        if (event.type === "response.output_text.annotation.added") added.push(event.annotation.url);
        last = event;
      }
      check(JSON.stringify(added) === JSON.stringify(urls), "annotation.added events", added);
      check(last.type === "response.completed" && last.response.usage.cost === cost, "completed, with cost", last);
    },
  };
}

await runIfMain(import.meta.url, webSearchSteps);
