// The openrouter:datetime server tool through @openrouter/sdk, which validates each answer with its
// zod schemas. Run by tests/test_server_tools.py: reads {serverURL, apiKey, model, answer, cost} as
// JSON on stdin (the fake model calls the tool, then answers `answer`; `cost` is each answer's
// usage.cost, both steps) and prints one JSON line per check, {"operation", "ok", "error"?}.
// conformance.mjs may import `serverToolSteps(config)` instead. With `pageUrl` in the config, the
// openrouter:web_search and openrouter:web_fetch steps run instead (`webServerToolSteps`): the fake model
// searches (or fetches `pageUrl`), then answers; `searchCost` and `fetchCost` are each loop's usage.cost.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

export function serverToolSteps({ serverURL, apiKey, model, answer, cost }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const input = "What time is it?";
  const tools = [{ type: "openrouter:datetime", parameters: { timezone: "Europe/Paris" } }];
  return {
    "servertools.chat.send": async () => {
      const res = await sdk.chat.send({ chatRequest: { model, messages: [{ role: "user", content: input }], tools } });
      check(res.choices[0].message.content === answer, "the answer", res.choices[0].message);
      check(res.usage.cost === cost, "the cost of both steps", res.usage);
      check(res.usage.serverToolUseDetails?.toolCallsExecuted === 1, "server_tool_use_details", res.usage);
    },
    "servertools.chat.send(stream)": async () => {
      const stream = await sdk.chat.send({
        chatRequest: { model, messages: [{ role: "user", content: input }], tools, stream: true },
      });
      let text = "";
      let last;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        last = chunk;
      }
      check(text === answer && last.usage.cost === cost, "streamed answer and cost", [text, last]);
    },
    "servertools.responses.send": async () => {
      const res = await sdk.responses.send({ responsesRequest: { model, input, tools } });
      check(JSON.stringify(res.output.map((item) => item.type)) === '["openrouter:datetime","message"]',
        "the datetime item, then the message", res.output);
      check(res.output[0].timezone === "Europe/Paris", "the item's timezone", res.output[0]);
      check(res.usage.cost === cost, "the cost", res.usage);
    },
    "servertools.responses.send(stream)": async () => {
      const stream = await sdk.responses.send({ responsesRequest: { model, input, tools, stream: true } });
      const added = [];
      let last;
      for await (const event of stream) {
        if (event.type === "response.output_item.added") added.push(event.item.type);
        last = event;
      }
      check(JSON.stringify(added) === '["openrouter:datetime","message"]', "output_item.added events", added);
      check(last.type === "response.completed" && last.response.usage.cost === cost, "completed, with cost", last);
    },
  };
}

export function webServerToolSteps({ serverURL, apiKey, model, answer, searchCost, fetchCost, pageUrl }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const messages = [{ role: "user", content: "What happened at the launch?" }];
  return {
    "servertools.chat.send(web_search)": async () => {
      const tools = [{ type: "openrouter:web_search", parameters: { max_results: 2 } }];
      const res = await sdk.chat.send({ chatRequest: { model, messages, tools } });
      check(res.choices[0].message.content === answer, "the answer", res.choices[0].message);
      check(res.usage.cost === searchCost, "both steps and the search fee", res.usage);
      check(res.usage.serverToolUseDetails?.webSearchRequests === 1, "web_search_requests", res.usage);
    },
    "servertools.responses.send(web_fetch)": async () => {
      const tools = [{ type: "openrouter:web_fetch" }];
      const res = await sdk.responses.send({ responsesRequest: { model, input: `Read ${pageUrl}`, tools } });
      check(res.output.at(-1).type === "message", "the message last", res.output);
      check(res.usage.cost === fetchCost, "both steps and the fetch fee", res.usage);
    },
  };
}

await runIfMain(import.meta.url, (config) => (config.pageUrl ? webServerToolSteps(config) : serverToolSteps(config)));
