// GET /metrics from node: no SDK has a method for it (it is Prometheus text, not OpenRouter's API), so
// a plain fetch, as conformance.mjs probes /health/*. Run by tests/test_metrics.py: reads {serverURL,
// apiKey (a management key)} as JSON on stdin and prints one JSON line per check.
import { check, runIfMain } from "./steps.mjs";

export function metricsSteps({ serverURL, apiKey }) {
  return {
    "GET /metrics": async () => {
      const res = await fetch(`${serverURL}/metrics`, { headers: { Authorization: `Bearer ${apiKey}` } });
      const text = await res.text();
      check(res.status === 200 && res.headers.get("content-type").startsWith("text/plain"), "the scrape", res.status);
      check(/^# TYPE omnirouter_requests_total counter$/m.test(text), "the requests counter", text.slice(0, 200));
      const refused = await fetch(`${serverURL}/metrics`);
      check(refused.status === 401 && (await refused.json()).error.code === 401, "no key: 401", refused.status);
    },
  };
}

await runIfMain(import.meta.url, metricsSteps);
