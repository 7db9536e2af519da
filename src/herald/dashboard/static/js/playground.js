// Playground: chat with a served model over /v1/chat/completions, streamed token by token.
import { api } from "./api.js";
import { el } from "./dom.js";

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)herald_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// Yield the JSON chunks of an OpenAI-style SSE response until `data: [DONE]`.
async function* chunks(resp) {
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

export function renderPlayground(root) {
  const model = el("select", { id: "pg-model", "aria-label": "model" });
  const system = el("input", { id: "pg-system", placeholder: "system prompt (optional)" });
  const temperature = el("input", { id: "pg-temperature", type: "number", min: 0, max: 2, step: 0.1, value: 0.7 });
  const maxTokens = el("input", { id: "pg-max-tokens", type: "number", min: 1, max: 4096, value: 128 });
  const prompt = el("textarea", { id: "pg-prompt", rows: 3, placeholder: "Say something…" });
  const transcript = el("div", { class: "transcript", id: "pg-transcript" });
  const usage = el("p", { class: "muted", id: "pg-usage" });
  const error = el("div", { class: "error", role: "alert", id: "pg-error" });
  const history = [];
  const send = el("button", { type: "submit" }, "Send");
  const form = el("form", { id: "pg-form" },
    el("div", { class: "filters" }, el("label", {}, "model ", model), el("label", {}, "temperature ", temperature),
      el("label", {}, "max tokens ", maxTokens)),
    system, prompt, send);
  root.append(el("section", { class: "card playground" }, el("h2", {}, "Playground"), form, error, transcript, usage));
  api("/models").then((res) => {
    for (const m of res.data) model.append(el("option", { value: m.id }, m.id));
    if (!res.data.length) error.textContent = "No models are served yet: deploy one first.";
  }).catch((err) => { error.textContent = err.message; });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text || !model.value) return;
    error.textContent = ""; usage.textContent = "";
    history.push({ role: "user", content: text });
    transcript.append(el("div", { class: "msg user" }, el("b", {}, "you "), text));
    const answer = el("span", { class: "answer" });
    transcript.append(el("div", { class: "msg assistant" }, el("b", {}, `${model.value} `), answer));
    prompt.value = "";
    send.disabled = true;
    const messages = system.value.trim() ? [{ role: "system", content: system.value.trim() }, ...history] : history;
    try {
      const resp = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ model: model.value, messages, stream: true, stream_options: { include_usage: true },
          temperature: Number(temperature.value), max_tokens: Number(maxTokens.value) }),
      });
      if (!resp.ok) throw new Error((await resp.json()).error?.message || `HTTP ${resp.status}`);
      let full = "";
      for await (const c of chunks(resp)) {
        const delta = c.choices?.[0]?.delta?.content;
        if (delta) { full += delta; answer.textContent = full; }
        if (c.usage) usage.textContent = `${c.usage.prompt_tokens} prompt + ${c.usage.completion_tokens} completion tokens`;
      }
      history.push({ role: "assistant", content: full });
    } catch (err) {
      error.textContent = err.message;
      history.pop();
    } finally { send.disabled = false; }
  });
}
