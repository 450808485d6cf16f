// Omnirouter dashboard: small progressive enhancements. Every page works without this file except
// the playground, whose answer streams in through fetch().
"use strict";

const OWN_KEY = "omnirouter-own-key"; // an inference key the user signed in with (this tab only)
const PENDING = "omnirouter-signing-in";

function rememberSignIn() {
  // The key typed at sign-in is kept for the playground only if it turns out to be an API key:
  // the next page says which kind signed in. A management key is dropped at once.
  const pending = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  if (pending && document.body.dataset.keyKind === "inference") sessionStorage.setItem(OWN_KEY, pending);
  if (document.body.dataset.keyKind === "none") sessionStorage.removeItem(OWN_KEY);
}

function wireForms() {
  const login = document.getElementById("login-form");
  if (login) login.addEventListener("submit", () => sessionStorage.setItem(PENDING, login.key.value.trim()));
  for (const form of document.querySelectorAll("form[action='/logout']")) {
    form.addEventListener("submit", () => sessionStorage.clear());
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function line(transcript, role, text) {
  const div = document.createElement("div");
  div.className = "message " + role;
  const who = document.createElement("span");
  who.className = "role";
  who.textContent = role;
  const body = document.createElement("pre");
  body.textContent = text;
  div.append(who, body);
  transcript.append(div);
  return body;
}

async function readStream(response, onDelta) {
  // Server-sent events: "data: {...}" lines; comments (": OPENROUTER PROCESSING") and [DONE] skipped.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const text = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (!text.startsWith("data:")) continue;
      const data = text.slice(5).trim();
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message || "upstream error");
      id = id || chunk.id;
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) onDelta(delta.content);
    }
  }
  return id;
}

async function generationCost(key, id) {
  // The generation is written within a moment of the stream's end.
  for (let i = 0; i < 60; i++) {
    const r = await fetch("/api/v1/generation?id=" + encodeURIComponent(id), {
      headers: { Authorization: "Bearer " + key },
    });
    if (r.ok) return (await r.json()).data;
    await new Promise((done) => setTimeout(done, 250));
  }
  return null;
}

function wirePlayground() {
  const form = document.getElementById("playground");
  if (!form) return;
  const keyInput = document.getElementById("pg-key");
  const transcript = document.getElementById("pg-transcript");
  const result = document.getElementById("pg-result");
  const send = document.getElementById("pg-send");
  const history = [];
  if (keyInput.value) sessionStorage.setItem("omnirouter-playground-key", keyInput.value);
  else keyInput.value = sessionStorage.getItem(OWN_KEY) || sessionStorage.getItem("omnirouter-playground-key") || "";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    const message = document.getElementById("pg-message");
    if (!key) {
      result.textContent = "Enter an API key first.";
      return;
    }
    history.push({ role: "user", content: message.value });
    line(transcript, "user", message.value);
    const answer = line(transcript, "assistant", "");
    send.disabled = true;
    result.textContent = "Streaming…";
    try {
      const response = await fetch(form.dataset.endpoint, {
        method: "POST",
        headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
        body: JSON.stringify({ model: document.getElementById("pg-model").value, messages: history, stream: true }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        throw new Error((body.error && body.error.message) || response.statusText);
      }
      const id = await readStream(response, (text) => (answer.textContent += text));
      history.push({ role: "assistant", content: answer.textContent });
      message.value = "";
      result.textContent = "Done. Looking up its cost…";
      const generation = id && (await generationCost(key, id));
      result.textContent = "";
      const link = document.createElement("a");
      link.href = "/generations/" + encodeURIComponent(id);
      link.id = "pg-generation";
      link.textContent = id;
      const cost = document.createElement("span");
      cost.id = "pg-cost";
      cost.textContent = generation ? "$" + generation.total_cost : "unknown";
      result.append("Generation ", link, " cost ", cost, generation ? ` (${generation.tokens_prompt} + ${generation.tokens_completion} tokens, ${generation.provider_name})` : "");
    } catch (err) {
      history.pop();
      answer.parentElement.classList.add("failed");
      result.textContent = "Error: " + err.message;
    } finally {
      send.disabled = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  rememberSignIn();
  wireForms();
  wirePlayground();
});
