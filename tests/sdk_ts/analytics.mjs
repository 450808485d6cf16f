// Activity, analytics, feedback, datasets, task classifications and benchmarks through @openrouter/sdk,
// which validates each answer with its zod schemas. Run by tests/test_analytics_sdk.py: reads {serverURL,
// apiKey, managementKey, keyHash, generationId, title, today, pastRequests, requests, tokens} as JSON on
// stdin and prints one JSON line per check, {"operation", "ok", "error"?}, as conformance.mjs does.
import { OpenRouter } from "@openrouter/sdk";
import { check, runIfMain } from "./steps.mjs";

const sum = (items, f) => items.reduce((n, i) => n + f(i), 0);

export function analyticsSteps(c) {
  const admin = new OpenRouter({ apiKey: c.managementKey, serverURL: c.serverURL });
  const sdk = new OpenRouter({ apiKey: c.apiKey, serverURL: c.serverURL });
  const today = new Date(`${c.today}T00:00:00Z`);
  const days = (n) => new Date(today.getTime() + n * 86_400_000);
  return {
    "analytics.getUserActivity": async () => {
      const res = await admin.analytics.getUserActivity({ apiKeyHash: c.keyHash });
      check(sum(res.data, (i) => i.requests) === c.pastRequests, "the past days' requests", res.data);
      check(res.data.every((i) => i.date < c.today && i.endpointId === `${i.model}@fake-a`), "completed days", res.data);
      const split = await admin.analytics.getUserActivity({ groupBy: "workspace" });
      check(split.data.every((i) => typeof i.workspaceId === "string"), "a workspace on each row", split.data);
    },
    "analytics.getAnalyticsMeta": async () => {
      const res = await admin.analytics.getAnalyticsMeta();
      check(res.data.metrics.some((m) => m.name === "usage" && m.displayFormat === "currency"), "usage", res.data);
      check(res.data.operators.map((o) => o.name).includes("not_in"), "the operators", res.data.operators);
    },
    "analytics.queryAnalytics": async () => {
      const res = await admin.analytics.queryAnalytics({
        requestBody: {
          metrics: ["request_count"],
          dimensions: ["model"],
          granularity: "day",
          timeRange: { start: days(-5), end: days(1) },
        },
      });
      // The SDK's row type is an empty object (its zod schema keeps no field): only the rows' count shows.
      check(res.data.data.length === res.data.metadata.rowCount && res.data.metadata.rowCount > 0, "rows", res.data);
      check(res.data.metadata.truncated === false, "not truncated", res.data.metadata);
    },
    "generations.submitFeedback": async () => {
      const res = await admin.generations.submitFeedback({
        submitGenerationFeedbackRequest: { generationId: c.generationId, category: "formatting", comment: "ts" },
      });
      check(res.data.success === true, "recorded", res);
    },
    "classifications.getTaskClassifications": async () => {
      const res = await sdk.classifications.getTaskClassifications({ window: "7d" });
      check(res.data.windowDays === 7 && res.data.classifications.length === 0, "none here", res.data);
    },
    "benchmarks.getBenchmarks": async () => {
      const res = await sdk.benchmarks.getBenchmarks({ source: "artificial-analysis" });
      check(res.data.length === 0 && res.meta.modelCount === 0 && res.meta.source === "artificial-analysis", "none", res);
    },
    "datasets.getAppRankings": async () => {
      const seen = [];
      for await (const page of await sdk.datasets.getAppRankings({ endDate: c.today })) seen.push(...page.result.data);
      check(seen.length === 1 && seen[0].appName === c.title && seen[0].rank === 1, "the app", seen);
      check(seen[0].totalRequests === c.requests && seen[0].totalTokens === String(c.tokens), "its traffic", seen);
    },
    "datasets.getRankingsDaily": async () => {
      const res = await sdk.datasets.getRankingsDaily({ endDate: c.today });
      check(sum(res.data, (i) => Number(i.totalTokens)) === c.tokens && res.meta.version === "v1", "tokens", res);
    },
    "datasets.getSessionCost": async () => {
      const pages = [];
      for await (const page of await sdk.datasets.getSessionCost({ turnRange: "1-turn" })) pages.push(page.result);
      check(pages.length === 1 && pages[0].data.length === 0 && pages[0].meta.windowDays === null, "empty", pages);
    },
  };
}

await runIfMain(import.meta.url, analyticsSteps);
