// The Files API through @openrouter/sdk, which validates each answer with its zod schemas. Run by
// tests/test_files.py: reads {serverURL, apiKey} as JSON on stdin and prints one JSON line per check,
// {"operation", "ok", "error"?}, as conformance.mjs does. fileSteps({serverURL, apiKey}) is exported for
// the conformance run.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

const PDF = new TextEncoder().encode("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");

export function fileSteps({ serverURL, apiKey }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const upload = (fileName, content) => sdk.files.upload({ requestBody: { file: { fileName, content } } });
  return {
    "files.upload": async () => {
      const res = await upload("paper.pdf", PDF);
      check(res.shape === "openrouter" && res.id.startsWith("or_file_") && res.type === "file", "a file", res);
      check(res.filename === "paper.pdf" && res.mimeType === "application/pdf" && res.sizeBytes === PDF.length
        && res.downloadable === false, "its metadata", res);
    },
    "files.list": async () => {
      const made = [];
      for (let i = 0; i < 3; i++) made.push((await upload(`n${i}.md`, new TextEncoder().encode(`# Note ${i}\n`))).id);
      const seen = [];
      for await (const page of await sdk.files.list({ limit: 2 })) {  // the SDK follows `cursor`
        check(page.result.shape === "openrouter" && page.result.data.length <= 2, "a page", page.result);
        seen.push(...page.result.data.map((f) => f.id));
      }
      check(JSON.stringify(seen.slice(-3)) === JSON.stringify(made), "every file, oldest first", seen);
    },
    "files.retrieve": async () => {
      const made = await upload("data.json", new TextEncoder().encode('{"a": [1, 2]}'));
      const res = await sdk.files.retrieve({ fileId: made.id });
      check(res.id === made.id && res.mimeType === "application/json" && res.createdAt === made.createdAt,
        "the same file", res);
    },
    "files.delete": async () => {
      const made = await upload("gone.txt", new TextEncoder().encode("bye"));
      const res = await sdk.files.delete({ fileId: made.id });
      check(res.shape === "openrouter" && res.id === made.id && res.type === "file_deleted", "deleted", res);
      const gone = await sdk.files.retrieve({ fileId: made.id }).then(() => null, (err) => err);
      check(gone?.statusCode === 404, "gone afterwards", String(gone));
    },
    "files.download": async () => {
      const made = await upload("mine.pdf", PDF);
      const err = await sdk.files.download({ fileId: made.id }).then(() => null, (e) => e);
      check(err?.name === "BadRequestResponseError" && /not downloadable/.test(err.message),
        "an upload is not downloadable", String(err));
    },
    "files.errors": async () => {
      const failure = (promise) => promise.then(() => null, (err) => err);
      const cases = [
        ["NotFoundResponseError", failure(sdk.files.retrieve({ fileId: "or_file_000000000000000000000000" }))],
        ["BadRequestResponseError", failure(sdk.files.list({ order: "desc" }))],
        ["UnauthorizedResponseError", failure(new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL })
          .files.list({}))],
      ];
      for (const [expected, pending] of cases) {
        const err = await pending;
        check(err?.name === expected, expected, String(err));
      }
    },
  };
}

await runIfMain(import.meta.url, fileSteps);
