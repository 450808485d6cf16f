// The web-fetch and file-parser plugins through @openrouter/sdk, which validates each answer with its
// zod schemas. Run by tests/test_plugin_file_parser.py: reads {serverURL, apiKey, model, pageUrl,
// pdfDataUrl} as JSON on stdin and prints one JSON line per check, {"operation", "ok", "error"?}, as
// conformance.mjs does. conformance.mjs may import `fetchFilesSteps(config)` instead.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

export function fetchFilesSteps({ serverURL, apiKey, model, pageUrl, pdfDataUrl }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const read = [{ role: "user", content: `Summarize ${pageUrl}` }];
  const webFetch = [{ id: "web-fetch", maxUses: 1, maxContentTokens: 500 }];
  return {
    "web-fetch.chat.send": async () => {
      const res = await sdk.chat.send({ chatRequest: { model, messages: read, plugins: webFetch } });
      check(res.choices[0].message.content === `Echo: Summarize ${pageUrl}`, "the answer", res);
    },
    "web-fetch.chat.send(stream)": async () => {
      const stream = await sdk.chat.send({ chatRequest: { model, messages: read, plugins: webFetch, stream: true } });
      let text = "";
      let last;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        last = chunk;
      }
      check(text === `Echo: Summarize ${pageUrl}` && last.usage.cost > 0, "streamed answer and usage", [text, last]);
    },
    "file-parser.chat.send": async () => {
      const messages = [{
        role: "user",
        content: [
          { type: "text", text: "Summarize the report." },
          { type: "file", file: { filename: "report.pdf", fileData: pdfDataUrl } },
        ],
      }];
      const plugins = [{ id: "file-parser", pdf: { engine: "pdf-text" } }];
      const res = await sdk.chat.send({ chatRequest: { model, messages, plugins } });
      check(res.choices[0].message.content.startsWith("Echo: "), "the answer", res);
    },
  };
}

await runIfMain(import.meta.url, fetchFilesSteps);
