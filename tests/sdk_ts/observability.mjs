// Observability destinations through @openrouter/sdk, which validates each answer with its zod schemas.
// Run by tests/test_observability_destinations.py: reads {serverURL, apiKey, url, workspaceId} as JSON
// on stdin and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
import { OpenRouter } from "@openrouter/sdk";

function check(condition, what, seen) {
  if (!condition) throw new Error(`${what} (saw ${JSON.stringify(seen)})`);
}

export function observabilitySteps({ serverURL, apiKey, url, workspaceId }) {
  const sdk = new OpenRouter({ apiKey, serverURL });
  const made = () => sdk.observability.create({
    createObservabilityDestinationRequest: { type: "webhook", name: "ts hook", config: { url }, enabled: false, workspaceId },
  });
  return {
    "observability.create": async () => {
      const res = await made();
      check(res.data.type === "webhook" && res.data.config.url === url && res.data.enabled === false, "a webhook", res);
      check(res.data.workspaceId === workspaceId, "in its workspace", res);
    },
    "observability.list": async () => {
      const seen = [];
      for await (const page of await sdk.observability.list({ workspaceId, limit: 1 })) {
        seen.push(...page.result.data.map((d) => d.id));
      }
      check(seen.length >= 1, "the workspace's destinations", seen);
    },
    "observability.get": async () => {
      const one = await made();
      const res = await sdk.observability.get({ id: one.data.id });
      check(res.data.id === one.data.id && res.data.name === "ts hook", "the same destination", res);
    },
    "observability.update": async () => {
      const one = await made();
      const res = await sdk.observability.update({
        id: one.data.id, updateObservabilityDestinationRequest: { name: "renamed", samplingRate: 0.5 },
      });
      check(res.data.name === "renamed" && res.data.samplingRate === 0.5, "updated", res);
    },
    "observability.delete": async () => {
      const one = await made();
      const res = await sdk.observability.delete({ id: one.data.id });
      check(res.deleted === true, "deleted", res);
      const gone = await sdk.observability.get({ id: one.data.id }).then(() => null, (err) => err);
      check(gone?.statusCode === 404, "gone afterwards", String(gone));
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const config = JSON.parse(await new Promise((resolve) => {
    let text = "";
    process.stdin.on("data", (d) => { text += d; });
    process.stdin.on("end", () => resolve(text));
  }));
  for (const [operation, step] of Object.entries(observabilitySteps(config))) {
    try {
      await step();
      console.log(JSON.stringify({ operation, ok: true }));
    } catch (err) {
      const detail = err?.cause ? `${err}: ${err.cause}` : String(err?.stack ?? err);
      console.log(JSON.stringify({ operation, ok: false, error: detail }));
    }
  }
}
