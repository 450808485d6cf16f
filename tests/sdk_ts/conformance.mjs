// Drives every operation of a running gateway through @openrouter/sdk, which validates each response
// with its zod schemas. Run by tests/test_sdk_conformance.py: reads its config as JSON on stdin
// ({serverURL, apiKey, keyHash, keyLabel, managementKey, model, memberIds: [an org admin, a member]}) and prints one JSON line per
// operation: {"operation", "ok", "error"?}. Operations run in order; each is independent of the others'
// outcome, and the names match ROUTES in the Python module.
import { OpenRouter } from "@openrouter/sdk";
import * as models from "@openrouter/sdk/models";
import * as operations from "@openrouter/sdk/models/operations";
import { check, readConfig, runSteps } from "./steps.mjs";

const config = await readConfig();
const { serverURL, apiKey, keyHash, keyLabel, managementKey, model, memberIds } = config;
const sdk = new OpenRouter({ apiKey, serverURL });
const admin = new OpenRouter({ apiKey: managementKey, serverURL });
const messages = [{ role: "user", content: "hello conformance" }];
const [author, slug] = model.split("/");

// The SDKs have no method for these; fetch them and let the SDK's schema for their shape judge.
async function raw(method, path, key, body) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body === undefined) return fetch(serverURL + path, { method, headers });
  headers["Content-Type"] = "application/json";
  return fetch(serverURL + path, { method, headers, body: JSON.stringify(body) });
}
// A stream's SSE events as {event, data}, comments skipped.
async function sse(path, body) {
  const res = await raw("POST", path, apiKey, { ...body, stream: true });
  check(res.status === 200 && res.headers.get("content-type").startsWith("text/event-stream"), "a stream", res.status);
  const found = [];
  for (const block of (await res.text()).split("\n\n")) {
    const fields = Object.fromEntries(block.split("\n").filter((l) => l && !l.startsWith(":"))
      .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]));
    if ("data" in fields) found.push(fields);
  }
  return found;
}
// Neither OpenRouter SDK has a method or a schema for the Anthropic Messages API or legacy completions
// (their OpenAPI snapshots predate them), and the Anthropic and OpenAI TypeScript SDKs check types at
// compile time only, so these steps check the shapes those SDKs declare.
const messageRequest = { model, max_tokens: 64, messages };
function checkMessage(m) {
  check(m.type === "message" && m.role === "assistant" && typeof m.id === "string" && m.model === model,
    "a message", m);
  check(Array.isArray(m.content) && m.content.every((b) => typeof b.type === "string"), "content blocks", m.content);
  check(["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"].includes(m.stop_reason),
    "a stop reason", m.stop_reason);
  check(Number.isInteger(m.usage.input_tokens) && Number.isInteger(m.usage.output_tokens) && m.usage.cost > 0,
    "usage and cost", m.usage);
}
function parsed(result) {
  if (!result.ok) throw result.error;
  return result.value;
}

async function generation() {
  const res = await sdk.chat.send({ chatRequest: { model, messages } });
  return res.id;
}

let counter = 0;
const unique = (prefix) => `${prefix}-${process.pid}-${++counter}`;
async function guardrail(fields = {}) {
  const res = await admin.guardrails.create({ createGuardrailRequest: { name: unique("ts-grd"), ...fields } });
  return res.data;
}
async function assignedKey() {
  const g = await guardrail();
  const key = await admin.apiKeys.create({ requestBody: { name: unique("ts-assigned") } });
  const res = await admin.guardrails.bulkAssignKeys({ id: g.id, bulkAssignKeysRequest: { keyHashes: [key.data.hash] } });
  check(res.assignedCount === 1, "one assigned", res);
  return { g, hash: key.data.hash, label: key.data.label };
}
async function assignedMember() {
  const g = await guardrail();
  const userId = memberIds[1];
  const res = await admin.guardrails.bulkAssignMembers({ id: g.id, bulkAssignMembersRequest: { memberUserIds: [userId] } });
  check(res.assignedCount === 1, "one assigned", res);
  return { g, userId };
}
async function workspace(fields = {}) {
  const slug = unique("ts-ws");
  const res = await admin.workspaces.create({ createWorkspaceRequest: { name: slug, slug, ...fields } });
  return res.data;
}
async function withMembers() {
  const w = await workspace();
  const res = await admin.workspaces.bulkAddMembers({ id: w.id, bulkAddWorkspaceMembersRequest: { userIds: memberIds } });
  check(res.addedCount === 2, "two added", res);
  return w;
}
async function budgeted() {
  const w = await workspace();
  for (const [interval, limitUsd] of [["lifetime", 1000], ["monthly", 500], ["daily", 10.5]]) {
    const res = await admin.workspaces.setBudget({ workspaceRef: w.id, interval, upsertWorkspaceBudgetRequest: { limitUsd } });
    check(res.data.workspaceId === w.id && res.data.limitUsd === limitUsd, "a budget", res.data);
  }
  return w;
}
const byokSecret = "sk-ts-conformance-secret-5678";
// In a workspace of its own, so that the inference steps still use the shared provider keys.
async function byok(fields = {}) {
  const w = await workspace();
  const res = await admin.byok.create({
    createBYOKKeyRequest: { provider: "fake-b", key: byokSecret, workspaceId: w.id, ...fields },
  });
  return res.data;
}

const steps = {
  "chat.send": async () => {
    const res = await sdk.chat.send({ chatRequest: { model, messages } });
    check(res.choices[0].message.content === "Echo: hello conformance", "echoed content", res.choices[0].message);
    check(res.model === model && res.usage.cost > 0, "model and cost", [res.model, res.usage]);
  },
  "chat.send(stream)": async () => {
    const stream = await sdk.chat.send({ chatRequest: { model, messages, stream: true } });
    let text = "";
    let last;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      last = chunk;
    }
    check(text === "Echo: hello conformance", "streamed content", text);
    check(last.usage && last.usage.cost > 0, "usage chunk last", last);
  },
  "models.list": async () => {
    const page = await sdk.models.list();
    check(page.result.data.some((m) => m.id === model), "model listed", page.result.data.map((m) => m.id));
  },
  "models.count": async () => {
    const page = await sdk.models.list();
    const res = await sdk.models.count();
    check(res.data.count === page.result.data.length, "count equals the list", res.data);
  },
  "models.listForUser": async () => {
    const page = await sdk.models.listForUser({ bearer: apiKey });
    check(page.result.data.some((m) => m.id === model), "model listed for the key", page.result.data.length);
  },
  "models.get": async () => {
    const res = await sdk.models.get({ author, slug });
    check(res.data.id === model && res.data.contextLength > 0, "the model", res.data);
  },
  "endpoints.list": async () => {
    const res = await sdk.endpoints.list({ author, slug });
    check(res.data.id === model && res.data.endpoints.length > 0, "its endpoints", res.data);
  },
  "providers.list": async () => {
    const res = await sdk.providers.list();
    check(res.data.length > 0, "providers", res.data);
  },
  "endpoints.listZdrEndpoints": async () => {
    const res = await sdk.endpoints.listZdrEndpoints();
    check(Array.isArray(res.data), "a list", res);
  },
  "apiKeys.list": async () => {
    const res = await admin.apiKeys.list();
    check(res.data.some((k) => k.hash === keyHash && k.label === keyLabel), "the key listed", res.data.length);
  },
  "apiKeys.create": async () => {
    const res = await admin.apiKeys.create({ requestBody: { name: "ts created", limit: 2.5 } });
    check(res.key.startsWith("sk-or-v1-") && res.data.limit === 2.5, "a new key", res.data);
    const fresh = new OpenRouter({ apiKey: res.key, serverURL });
    const mine = await fresh.apiKeys.getCurrentKeyMetadata();
    check(mine.data.limit === 2.5, "the one-time secret works", mine.data);
  },
  "apiKeys.get": async () => {
    const res = await admin.apiKeys.get({ hash: keyHash });
    check(res.data.hash === keyHash && res.data.limit === 3, "the key", res.data);
  },
  "apiKeys.update": async () => {
    const made = await admin.apiKeys.create({ requestBody: { name: "ts to update" } });
    const res = await admin.apiKeys.update({ hash: made.data.hash, requestBody: { name: "ts updated", limit: 4 } });
    check(res.data.name === "ts updated" && res.data.limit === 4, "the updated key", res.data);
  },
  "apiKeys.delete": async () => {
    const made = await admin.apiKeys.create({ requestBody: { name: "ts to delete" } });
    const res = await admin.apiKeys.delete({ hash: made.data.hash });
    check(res.deleted === true, "deleted", res);
    const gone = await admin.apiKeys.get({ hash: made.data.hash }).then(() => null, (err) => err);
    check(gone?.statusCode === 404, "gone afterwards", String(gone));
  },
  "apiKeys.getCurrentKeyMetadata": async () => {
    const res = await sdk.apiKeys.getCurrentKeyMetadata();
    check(res.data.label === keyLabel && res.data.limit === 3, "the calling key", res.data);
  },
  "GET /auth/key": async () => {
    const res = await raw("GET", "/auth/key", apiKey);
    check(res.status === 200, "200", res.status);
    const legacy = parsed(operations.getCurrentKeyResponseFromJSON(await res.text()));
    check(legacy.data.label === keyLabel, "the calling key", legacy.data);
  },
  "credits.getCredits": async () => {
    await generation();
    const res = await admin.credits.getCredits();
    check(res.data.totalCredits >= res.data.totalUsage, "credits cover usage", res.data);
  },
  "POST /credits/coinbase": async () => {
    const res = await raw("POST", "/credits/coinbase", managementKey);
    check(res.status === 410, "410", res.status);
    const body = await res.json();
    const error = models.GoneResponseErrorData$inboundSchema.parse(body.error);
    check(error.code === 410, "the Gone error", error);
  },
  "generations.getGeneration": async () => {
    const id = await generation();
    const res = await sdk.generations.getGeneration({ id });
    check(res.data.id === id && res.data.model === model && res.data.totalCost > 0, "the generation", res.data);
  },
  "generations.listGenerationContent": async () => {
    const id = await generation();
    const res = await sdk.generations.listGenerationContent({ id });
    check(res.data.output.completion === "Echo: hello conformance", "its content", res.data);
  },
  "GET /openapi.json": async () => {
    const res = await raw("GET", "/openapi.json", apiKey);
    const doc = await res.json();
    check(res.status === 200 && doc.paths["/chat/completions"]?.post, "the server's document", res.status);
  },
  "GET /health/live": async () => {
    const res = await raw("GET", "/health/live", apiKey);
    check(res.status === 200 && (await res.json()).status === "ok", "the liveness probe", res.status);
  },
  "GET /health/ready": async () => {
    const res = await raw("GET", "/health/ready", apiKey);
    check(res.status === 200 && (await res.json()).status === "ok", "the readiness probe", res.status);
  },
  "responses.send": async () => {
    const res = await sdk.responses.send({ responsesRequest: { model, input: "hello conformance" } });
    const message = res.output.find((item) => item.type === "message");
    check(message?.content[0]?.text === "Echo: hello conformance", "the answer", res.output);
    check(res.status === "completed" && res.model === model && res.usage.cost > 0, "status, model and cost", res);
  },
  "responses.send(stream)": async () => {
    const stream = await sdk.responses.send({ responsesRequest: { model, input: "hello conformance", stream: true } });
    let text = "";
    let last;
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
      last = event;
    }
    check(text === "Echo: hello conformance", "streamed text", text);
    check(last.type === "response.completed" && last.response.usage.cost > 0, "completed last, with cost", last);
  },
  "POST /messages": async () => {
    const res = await raw("POST", "/messages", apiKey, messageRequest);
    const message = await res.json();
    check(res.status === 200, "200", message);
    checkMessage(message);
    check(message.content[0].type === "text" && message.content[0].text === "Echo: hello conformance",
      "the text", message.content);
  },
  "POST /messages(stream)": async () => {
    const events = (await sse("/messages", messageRequest)).map((e) => ({ name: e.event, ...JSON.parse(e.data) }));
    check(events.every((e) => e.name === e.type), "each event named as its type", events.map((e) => e.name));
    check(events[0].type === "message_start" && events.at(-1).type === "message_stop", "start and stop", events);
    const text = events.filter((e) => e.type === "content_block_delta" && e.delta.type === "text_delta")
      .map((e) => e.delta.text).join("");
    check(text === "Echo: hello conformance", "streamed text", text);
    const final = events.find((e) => e.type === "message_delta");
    check(final.delta.stop_reason === "end_turn" && final.usage.cost > 0, "stop reason and cost", final);
  },
  "POST /messages/count_tokens": async () => {
    const res = await raw("POST", "/messages/count_tokens", apiKey, { model, messages });
    const body = await res.json();
    check(res.status === 200 && Number.isInteger(body.input_tokens) && body.input_tokens > 0, "a count", body);
  },
  "POST /completions": async () => {
    const res = await raw("POST", "/completions", apiKey, { model, prompt: "hello conformance" });
    const body = await res.json();
    check(res.status === 200 && body.object === "text_completion" && body.model === model, "a completion", body);
    check(body.choices[0].text === "Echo: hello conformance" && body.choices[0].finish_reason === "stop",
      "the text", body.choices);
    check(body.usage.completion_tokens > 0 && body.usage.cost > 0, "usage and cost", body.usage);
  },
  "POST /completions(stream)": async () => {
    const events = await sse("/completions", { model, prompt: "hello conformance" });
    check(events.at(-1).data === "[DONE]", "[DONE] last", events.at(-1));
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    check(chunks.every((ch) => ch.object === "text_completion"), "text completion chunks", chunks);
    const text = chunks.map((ch) => ch.choices[0]?.text ?? "").join("");
    check(text === "Echo: hello conformance", "streamed text", text);
    check(chunks.at(-1).usage?.cost > 0, "usage with cost last", chunks.at(-1));
  },
  "oAuth.createAuthCode": async () => {
    const res = await admin.oAuth.createAuthCode({ requestBody: { callbackUrl: "https://app.example/cb", limit: 1.5 } });
    check(res.data.id.startsWith("auth_code_") && Number.isInteger(res.data.appId), "a code", res.data);
  },
  // The whole PKCE flow with the SDK's own helpers: its challenge, its /auth URL (the consent page at
  // the server's root), the form approved with the management key, the code from the redirect.
  "oAuth.exchangeAuthCodeForAPIKey": async () => {
    const { codeChallenge, codeVerifier } = await sdk.oAuth.createSHA256CodeChallenge();
    const callbackUrl = "http://localhost:3000/callback";
    const url = await sdk.oAuth.createAuthorizationUrl({ callbackUrl, codeChallenge, codeChallengeMethod: "S256" });
    const page = await fetch(url);
    check(page.status === 200 && (await page.text()).includes("localhost:3000"), "the consent page", page.status);
    const form = new URLSearchParams({ ...Object.fromEntries(new URL(url).searchParams), management_key: managementKey });
    const approved = await fetch(new URL("/auth", url), { method: "POST", body: form, redirect: "manual" });
    const location = approved.headers.get("location") ?? "";
    check(approved.status === 303 && location.startsWith(callbackUrl + "?code="), "a redirect with the code", location);
    const code = new URL(location).searchParams.get("code");
    const res = await sdk.oAuth.exchangeAuthCodeForAPIKey({
      requestBody: { code, codeVerifier, codeChallengeMethod: "S256" },
    });
    check(/^sk-or-v1-[0-9a-f]{64}$/.test(res.key) && res.userId === null, "a key", res);
  },
  // Presets: created by the management key, read by the inference key (the same workspace).
  "presets.createPresetsChatCompletions": async () => {
    const res = await admin.presets.createPresetsChatCompletions({
      slug: "ts-chat", chatRequest: { model, temperature: 0.2, messages: [{ role: "system", content: "Be brief." }] },
    });
    const v = res.data.designatedVersion;
    check(res.data.slug === "ts-chat" && v.systemPrompt === "Be brief." && v.config.temperature === 0.2, "a preset", res.data);
  },
  "presets.createPresetsMessages": async () => {
    const res = await admin.presets.createPresetsMessages({
      slug: "ts-messages", messagesRequest: { model, maxTokens: 64, system: "Be brief.", messages },
    });
    const v = res.data.designatedVersion;
    check(v.systemPrompt === "Be brief." && v.config.max_tokens === 64 && v.config.model === model, "a preset", v);
  },
  "presets.createPresetsResponses": async () => {
    const res = await admin.presets.createPresetsResponses({
      slug: "ts-responses", responsesRequest: { model, instructions: "Be brief.", input: "hello conformance" },
    });
    check(res.data.designatedVersion.systemPrompt === "Be brief.", "a preset", res.data);
  },
  "presets.list": async () => {
    await admin.presets.createPresetsChatCompletions({ slug: "ts-list", chatRequest: { model, messages } });
    const page = await sdk.presets.list({ limit: 100 });
    check(page.result.data.some((p) => p.slug === "ts-list") && page.result.totalCount >= 1, "listed", page.result);
  },
  "presets.get": async () => {
    await admin.presets.createPresetsChatCompletions({ slug: "ts-get", chatRequest: { model, messages } });
    const res = await sdk.presets.get({ slug: "ts-get" });
    check(res.data.designatedVersion.config.model === model && res.data.status === "active", "a preset", res.data);
  },
  "presets.listVersions": async () => {
    for (const temperature of [0.1, 0.2]) {
      await admin.presets.createPresetsChatCompletions({ slug: "ts-versions", chatRequest: { model, temperature, messages } });
    }
    const page = await sdk.presets.listVersions({ slug: "ts-versions" });
    check(page.result.data.map((v) => v.version).join() === "1,2", "two versions, oldest first", page.result);
  },
  "presets.getVersion": async () => {
    await admin.presets.createPresetsChatCompletions({ slug: "ts-version", chatRequest: { model, temperature: 0.3, messages } });
    const res = await sdk.presets.getVersion({ slug: "ts-version", version: "1" });
    check(res.data.version === 1 && res.data.config.temperature === 0.3, "version 1", res.data);
  },
  // Guardrails, workspaces, BYOK keys and members, with the management key. Members come from the
  // operator (`omnirouter members add`; no API creates them): the Python side adds them, memberIds.
  // Guardrails are assigned only to keys made for the step; BYOK keys live in workspaces of their own.
  "guardrails.create": async () => {
    const name = unique("ts-grd");
    const res = await admin.guardrails.create({ createGuardrailRequest: {
      name, description: "made by the SDK", limitUsd: 12.5, resetInterval: "weekly", allowedModels: [model],
      allowedProviders: ["fake-a"], contentFilters: [{ pattern: "secret-[0-9]+", action: "redact", label: "[S]" }],
    } });
    const g = res.data;
    check(g.name === name && g.description === "made by the SDK" && g.limitUsd === 12.5 && g.resetInterval === "weekly",
      "the guardrail", g);
    check(g.allowedModels.join() === model && g.allowedProviders.join() === "fake-a"
      && g.contentFilters[0].pattern === "secret-[0-9]+", "its rules", g);
  },
  "guardrails.list": async () => {
    const made = await guardrail();
    const page = await admin.guardrails.list({ limit: 100 });
    const found = page.result.data.find((g) => g.id === made.id);
    check(found?.name === made.name && page.result.totalCount >= 1, "listed", page.result);
  },
  "guardrails.get": async () => {
    const made = await guardrail({ limitUsd: 3 });
    const res = await admin.guardrails.get({ id: made.id });
    check(res.data.id === made.id && res.data.name === made.name && res.data.limitUsd === 3, "the guardrail", res.data);
  },
  "guardrails.update": async () => {
    const made = await guardrail();
    const res = await admin.guardrails.update({
      id: made.id, updateGuardrailRequest: { description: "changed", allowedProviders: ["fake-b"] },
    });
    check(res.data.id === made.id && res.data.description === "changed" && res.data.allowedProviders.join() === "fake-b"
      && res.data.updatedAt, "the updated guardrail", res.data);
  },
  "guardrails.delete": async () => {
    const made = await guardrail();
    const res = await admin.guardrails.delete({ id: made.id });
    check(res.deleted === true, "deleted", res);
    const gone = await admin.guardrails.get({ id: made.id }).then(() => null, (err) => err);
    check(gone?.statusCode === 404, "gone afterwards", String(gone));
  },
  "guardrails.bulkAssignKeys": async () => {
    const { g, hash } = await assignedKey();
    const page = await admin.guardrails.listGuardrailKeyAssignments({ id: g.id });
    check(page.result.data.map((a) => a.keyHash).join() === hash, "the key assigned", page.result);
  },
  "guardrails.bulkUnassignKeys": async () => {
    const { g, hash } = await assignedKey();
    const res = await admin.guardrails.bulkUnassignKeys({ id: g.id, bulkUnassignKeysRequest: { keyHashes: [hash] } });
    check(res.unassignedCount === 1, "one unassigned", res);
    const page = await admin.guardrails.listGuardrailKeyAssignments({ id: g.id });
    check(page.result.data.length === 0, "none left", page.result);
  },
  "guardrails.listGuardrailKeyAssignments": async () => {
    const { g, hash, label } = await assignedKey();
    const page = await admin.guardrails.listGuardrailKeyAssignments({ id: g.id });
    const [only] = page.result.data;
    check(page.result.totalCount === 1 && only.guardrailId === g.id && only.keyHash === hash && only.keyLabel === label,
      "the assignment", page.result);
  },
  "guardrails.listKeyAssignments": async () => {
    const { g, hash } = await assignedKey();
    const page = await admin.guardrails.listKeyAssignments({ limit: 100 });
    check(page.result.data.some((a) => a.guardrailId === g.id && a.keyHash === hash), "the assignment", page.result);
  },
  "guardrails.bulkAssignMembers": async () => {
    const { g, userId } = await assignedMember();
    const page = await admin.guardrails.listGuardrailMemberAssignments({ id: g.id });
    check(page.result.data.map((a) => a.userId).join() === userId, "the member assigned", page.result);
  },
  "guardrails.bulkUnassignMembers": async () => {
    const { g, userId } = await assignedMember();
    const res = await admin.guardrails.bulkUnassignMembers({
      id: g.id, bulkUnassignMembersRequest: { memberUserIds: [userId] },
    });
    check(res.unassignedCount === 1, "one unassigned", res);
    const page = await admin.guardrails.listGuardrailMemberAssignments({ id: g.id });
    check(page.result.data.length === 0, "none left", page.result);
  },
  "guardrails.listGuardrailMemberAssignments": async () => {
    const { g, userId } = await assignedMember();
    const page = await admin.guardrails.listGuardrailMemberAssignments({ id: g.id });
    const [only] = page.result.data;
    check(page.result.totalCount === 1 && only.guardrailId === g.id && only.userId === userId, "the assignment",
      page.result);
  },
  "guardrails.listMemberAssignments": async () => {
    const { g, userId } = await assignedMember();
    const page = await admin.guardrails.listMemberAssignments({ limit: 100 });
    check(page.result.data.some((a) => a.guardrailId === g.id && a.userId === userId), "the assignment", page.result);
  },
  "workspaces.create": async () => {
    const slug = unique("ts-ws");
    const res = await admin.workspaces.create({ createWorkspaceRequest: {
      name: "Made by the SDK", slug, description: "conformance", defaultTextModel: model, defaultProviderSort: "price",
    } });
    const w = res.data;
    check(w.name === "Made by the SDK" && w.slug === slug && w.description === "conformance"
      && w.defaultTextModel === model && w.defaultProviderSort === "price" && w.updatedAt === null, "the workspace", w);
  },
  "workspaces.list": async () => {
    const made = await workspace();
    const page = await admin.workspaces.list({ limit: 100 });
    check(page.result.data[0].slug === "default" && page.result.data.some((w) => w.id === made.id)
      && page.result.totalCount === page.result.data.length, "listed after the default", page.result);
  },
  "workspaces.get": async () => {
    const made = await workspace();
    const byId = await admin.workspaces.get({ id: made.id });
    const bySlug = await admin.workspaces.get({ id: made.slug });
    check(byId.data.slug === made.slug && bySlug.data.id === made.id && byId.data.name === made.name, "the workspace",
      [byId.data, bySlug.data]);
  },
  "workspaces.update": async () => {
    const made = await workspace({ defaultTextModel: model });
    const res = await admin.workspaces.update({
      id: made.slug, updateWorkspaceRequest: { name: "Renamed", defaultTextModel: null },
    });
    check(res.data.id === made.id && res.data.name === "Renamed" && res.data.defaultTextModel === null
      && res.data.updatedAt, "the updated workspace", res.data);
  },
  "workspaces.delete": async () => {
    const made = await workspace();
    const res = await admin.workspaces.delete({ id: made.id });
    check(res.deleted === true, "deleted", res);
    const gone = await admin.workspaces.get({ id: made.id }).then(() => null, (err) => err);
    check(gone?.statusCode === 404, "gone afterwards", String(gone));
  },
  "workspaces.bulkAddMembers": async () => {
    const w = await workspace();
    const res = await admin.workspaces.bulkAddMembers({ id: w.id, bulkAddWorkspaceMembersRequest: { userIds: memberIds } });
    const seen = res.data.map((m) => [m.userId, m.role, m.workspaceId].join()).sort();
    const expected = [[memberIds[0], "admin", w.id].join(), [memberIds[1], "member", w.id].join()].sort();
    check(res.addedCount === 2 && seen.join("|") === expected.join("|"), "both added", res);
  },
  "workspaces.listMembers": async () => {
    const w = await withMembers();
    const page = await admin.workspaces.listMembers({ id: w.slug });
    check(page.result.totalCount === 2 && page.result.data.map((m) => m.userId).sort().join() === [...memberIds].sort().join(),
      "both members", page.result);
  },
  "workspaces.bulkRemoveMembers": async () => {
    const w = await withMembers();
    const res = await admin.workspaces.bulkRemoveMembers({
      id: w.id, bulkRemoveWorkspaceMembersRequest: { userIds: [memberIds[1]] },
    });
    check(res.removedCount === 1, "one removed", res);
    const page = await admin.workspaces.listMembers({ id: w.id });
    check(page.result.data.map((m) => m.userId).join() === memberIds[0], "one left", page.result);
  },
  "workspaces.setBudget": async () => {
    const w = await workspace();
    const first = await admin.workspaces.setBudget({
      workspaceRef: w.slug, interval: "weekly", upsertWorkspaceBudgetRequest: { limitUsd: 100 },
    });
    check(first.data.workspaceId === w.id && first.data.resetInterval === "weekly" && first.data.limitUsd === 100,
      "the budget", first.data);
    const again = await admin.workspaces.setBudget({
      workspaceRef: w.id, interval: "weekly", upsertWorkspaceBudgetRequest: { limitUsd: 80, includeByokInBudgets: true },
    });
    check(again.data.id === first.data.id && again.data.limitUsd === 80 && again.includeByokInBudgets === true,
      "the same budget, changed", again);
  },
  "workspaces.listBudgets": async () => {
    const w = await budgeted();
    const res = await admin.workspaces.listBudgets({ workspaceRef: w.slug });
    const seen = res.data.map((b) => `${b.resetInterval}:${b.limitUsd}`).join();
    check(seen === "null:1000,monthly:500,daily:10.5" && res.includeByokInBudgets === false, "widest first", res);
  },
  "workspaces.getBudget": async () => {
    const w = await budgeted();
    const res = await admin.workspaces.getBudget({ workspaceRef: w.id, interval: "monthly" });
    check(res.data.workspaceId === w.id && res.data.resetInterval === "monthly" && res.data.limitUsd === 500,
      "the monthly budget", res.data);
  },
  "workspaces.deleteBudget": async () => {
    const w = await budgeted();
    const res = await admin.workspaces.deleteBudget({ workspaceRef: w.id, interval: "daily" });
    check(res.deleted === true, "deleted", res);
    const gone = await admin.workspaces.getBudget({ workspaceRef: w.id, interval: "daily" }).then(() => null, (e) => e);
    check(gone?.statusCode === 404, "gone afterwards", String(gone));
  },
  "organization.listMembers": async () => {
    const page = await admin.organization.listMembers({ limit: 100 });
    const byId = Object.fromEntries(page.result.data.map((m) => [m.id, m]));
    const [boss, plain] = memberIds.map((id) => byId[id]);
    check(boss?.role === "org:admin" && plain?.role === "org:member" && plain.firstName === "Jane"
      && plain.lastName === "Doe" && plain.email.endsWith("@example.com"), "the members", page.result);
  },
  "byok.create": async () => {
    const made = await byok({ name: "made by the SDK", isFallback: true, allowedModels: ["test/beta"] });
    check(made.name === "made by the SDK" && made.provider === "fake-b" && made.isFallback === true
      && made.disabled === false && made.label === "sk-..." + byokSecret.slice(-4)
      && made.allowedModels.join() === "test/beta", "the BYOK key", made);
  },
  "byok.list": async () => {
    const made = await byok({ name: "listed" });
    const page = await admin.byok.list({ workspaceId: made.workspaceId });
    const [only] = page.result.data;
    check(page.result.totalCount === 1 && only.id === made.id && only.name === "listed" && only.label === made.label,
      "the workspace's one key", page.result);
  },
  "byok.get": async () => {
    const made = await byok({ name: "to read" });
    const res = await admin.byok.get({ id: made.id });
    check(res.data.id === made.id && res.data.name === "to read" && res.data.label === made.label, "the key", res.data);
  },
  "byok.update": async () => {
    const made = await byok({ name: "to change" });
    const res = await admin.byok.update({
      id: made.id, updateBYOKKeyRequest: { disabled: true, name: "changed", key: "sk-another-secret-9876" },
    });
    check(res.data.id === made.id && res.data.name === "changed" && res.data.disabled === true
      && res.data.label === "sk-...9876", "the changed key", res.data);
  },
  "byok.delete": async () => {
    const made = await byok();
    const res = await admin.byok.delete({ id: made.id });
    check(res.deleted === true, "deleted", res);
    const gone = await admin.byok.get({ id: made.id }).then(() => null, (err) => err);
    check(gone?.statusCode === 404, "gone afterwards", String(gone));
  },
  // Not an operation: error answers must parse as the SDK's typed errors, not fail its validation.
  "errors": async () => {
    const failure = (promise) => promise.then(() => null, (err) => err);
    const cases = [
      ["BadRequestResponseError", failure(sdk.chat.send({ chatRequest: { model: "test/typo", messages } }))],
      ["BadRequestResponseError", failure(
        sdk.responses.send({ responsesRequest: { model: "test/typo", input: "hello conformance" } }))],
      ["NotFoundResponseError", failure(sdk.generations.getGeneration({ id: "gen-1-00000000000000000000" }))],
      ["NotFoundResponseError", failure(sdk.models.get({ author, slug: "typo" }))],
      ["ForbiddenResponseError", failure(sdk.credits.getCredits())],
      ["UnauthorizedResponseError", failure(
        new OpenRouter({ apiKey: "sk-or-v1-" + "0".repeat(64), serverURL }).apiKeys.getCurrentKeyMetadata())],
    ];
    for (const [expected, pending] of cases) {
      const err = await pending;
      check(err?.name === expected, expected, String(err));
    }
  },
};

await runSteps(steps);
