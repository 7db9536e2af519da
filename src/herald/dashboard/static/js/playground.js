// Playground: chat with any served model or RAG chain (rag/<collection>@<model>) over
// /v1/chat/completions, streamed token by token; citations of RAG answers; prompt templates
// (versions, variables, rendered by the server); and a second model side by side on the same prompt.
import { api } from "./api.js";
import { el, clear, fill } from "./dom.js";

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

// One entry per source document, with the markers [n] of its passages (a document often gives
// several): the answer's markers point at passages, the reader wants each document once.
function citationList(cites) {
  const bySource = new Map();
  for (const c of cites) bySource.set(c.source, [...(bySource.get(c.source) || []), c]);
  return el("ul", { class: "citations" }, [...bySource].map(([source, passages]) => {
    const cited = passages.some((c) => c.cited);
    const best = Math.max(...passages.map((c) => Number(c.score)));
    return el("li", { class: cited ? "cited" : "", "data-source": source },
      el("b", {}, passages[0].title || source.split("/").pop()), " ",
      el("span", { class: "muted" }, `${source} · score ${best.toFixed(3)}`), " ",
      passages.map((c) => el("span", {
        class: `passage${c.cited ? " cited" : ""}`,
        title: [c.section, c.page != null ? `page ${c.page}` : null, `score ${Number(c.score).toFixed(3)}`].filter(Boolean).join(" · "),
      }, `[${c.index}]${c.page != null ? ` p.${c.page}` : ""}`)),
      cited ? el("span", { class: "pill ok" }, "cited") : null);
  }));
}

// One chat column: its own model, history, transcript and usage line.
function column(id, label) {
  const model = el("select", { id: `${id}-model`, "aria-label": label });
  const transcript = el("div", { class: "transcript", id: `${id}-transcript` });
  const usage = el("p", { class: "muted", id: `${id}-usage` });
  const error = el("div", { class: "error", role: "alert", id: `${id}-chat-error` });
  const history = [];
  const node = el("div", { class: "pg-col" }, el("label", {}, `${label} `, model), error, transcript, usage);

  async function send(text, params) {
    error.textContent = ""; usage.textContent = "";
    history.push({ role: "user", content: text });
    transcript.append(el("div", { class: "msg user" }, el("b", {}, "you "), text));
    const answer = el("span", { class: "answer" });
    const cites = el("div", { class: "cites" });
    transcript.append(el("div", { class: "msg assistant" }, el("b", {}, `${model.value} `), answer, cites));
    const messages = params.system ? [{ role: "system", content: params.system }, ...history] : history;
    // a RAG chain appends a "Sources:" footer to the answer by default; the sources are listed
    // below the answer from the citations header instead, so the footer would show them twice
    const rag = model.value.startsWith("rag/") ? { rag: { sources_footer: false } } : {};
    const started = performance.now();
    let first = null;
    try {
      const resp = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ model: model.value, messages, stream: true, stream_options: { include_usage: true },
          temperature: params.temperature, top_p: params.top_p, max_tokens: params.max_tokens, ...rag }),
      });
      if (!resp.ok) throw new Error((await resp.json()).error?.message || `HTTP ${resp.status}`);
      const header = resp.headers.get("x-herald-rag-citations");
      let full = "";
      for await (const c of chunks(resp)) {
        const delta = c.choices?.[0]?.delta?.content;
        if (delta) { first ??= performance.now(); full += delta; answer.textContent = full; }
        if (c.usage) {
          const secs = (performance.now() - started) / 1000;
          usage.textContent = `${c.usage.prompt_tokens} prompt + ${c.usage.completion_tokens} completion tokens · first token ${first ? Math.round(first - started) : "–"} ms · ${secs.toFixed(2)} s`;
        }
      }
      if (header) {
        const list = JSON.parse(header);
        const used = new Set([...full.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
        fill(cites, el("h4", {}, "Sources"), citationList(list.map((c) => ({ ...c, cited: used.has(c.index) }))));
      }
      history.push({ role: "assistant", content: full });
    } catch (err) {
      error.textContent = err.message;
      history.pop();
    }
  }
  return { model, node, send, reset: () => { history.length = 0; clear(transcript); usage.textContent = ""; } };
}

export function renderPlayground(root) {
  const a = column("pg", "model");
  const b = column("pg2", "compare with");
  const sideBySide = el("input", { type: "checkbox", id: "pg-compare", "aria-label": "side by side" });
  const system = el("input", { id: "pg-system", placeholder: "system prompt (optional)" });
  const temperature = el("input", { id: "pg-temperature", type: "number", min: 0, max: 2, step: 0.1, value: 0.7 });
  const topP = el("input", { id: "pg-top-p", type: "number", min: 0.05, max: 1, step: 0.05, value: 1 });
  const maxTokens = el("input", { id: "pg-max-tokens", type: "number", min: 1, max: 4096, value: 128 });
  const prompt = el("textarea", { id: "pg-prompt", rows: 3, placeholder: "Say something…" });
  const error = el("div", { class: "error", role: "alert", id: "pg-error" });
  const send = el("button", { type: "submit" }, "Send");
  const clearBtn = el("button", { type: "button", class: "secondary", onclick: () => { a.reset(); b.reset(); } }, "New chat");
  // prompt templates: pick a name and version, fill its variables, render into the prompt box
  const tplName = el("select", { id: "pg-template", "aria-label": "prompt template" }, el("option", { value: "" }, "— none —"));
  const tplVersion = el("select", { id: "pg-template-version", "aria-label": "template version" });
  const tplVars = el("span", { class: "vars" });
  const tplUse = el("button", { type: "button", class: "secondary", id: "pg-template-use" }, "Use template");
  const tplBox = el("div", { class: "filters template" }, el("label", {}, "template ", tplName), tplVersion, tplVars, tplUse);
  const cols = el("div", { class: "pg-cols" }, a.node);
  const form = el("form", { id: "pg-form" },
    el("div", { class: "filters" }, el("label", {}, "temperature ", temperature), el("label", {}, "top p ", topP),
      el("label", {}, "max tokens ", maxTokens), el("label", {}, sideBySide, " side by side")),
    tplBox, system, prompt, el("div", { class: "actions" }, send, clearBtn));
  root.append(el("section", { class: "card playground" }, el("h2", {}, "Playground"), form, error, cols));

  sideBySide.addEventListener("change", () => { if (sideBySide.checked) cols.append(b.node); else b.node.remove(); });
  api("/models").then((res) => {
    const ids = res.data.map((m) => m.id).filter((id) => !/minilm|embed/i.test(id)).sort((x, y) => x.startsWith("rag/") - y.startsWith("rag/") || x.localeCompare(y));
    for (const id of ids) { a.model.append(el("option", { value: id }, id)); b.model.append(el("option", { value: id }, id)); }
    if (ids.length > 1) b.model.value = ids[1];
    if (!ids.length) error.textContent = "No models are served yet: deploy one first.";
  }).catch((err) => { error.textContent = err.message; });

  let versions = [];
  api("/prompts").then((res) => {
    for (const p of res.data) tplName.append(el("option", { value: p.name }, p.name));
    if (!res.data.length) tplBox.hidden = true;
  }).catch(() => { tplBox.hidden = true; });
  function drawVars() {
    const v = versions.find((x) => String(x.version) === tplVersion.value);
    fill(tplVars, (v?.variables || []).map((n) => el("input", { "data-var": n, placeholder: n, "aria-label": `variable ${n}`, size: 12 })));
  }
  tplName.addEventListener("change", async () => {
    clear(tplVersion); clear(tplVars); versions = [];
    if (!tplName.value) return;
    versions = (await api(`/prompts/${encodeURIComponent(tplName.value)}`)).data;
    for (const v of versions) tplVersion.append(el("option", { value: v.version }, `v${v.version}${v.aliases?.length ? ` (${v.aliases.join(", ")})` : ""}`));
    drawVars();
  });
  tplVersion.addEventListener("change", drawVars);
  tplUse.addEventListener("click", async () => {
    if (!tplName.value) return;
    error.textContent = "";
    const variables = Object.fromEntries([...tplVars.querySelectorAll("[data-var]")].map((i) => [i.dataset.var, i.value]));
    try {
      const r = await api("/prompts/render", { method: "POST", body: { ref: `prompts:/${tplName.value}/${tplVersion.value}`, variables } });
      prompt.value = r.text;
    } catch (err) { error.textContent = err.message; }
  });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = prompt.value.trim();
    if (!text || !a.model.value) return;
    error.textContent = "";
    prompt.value = "";
    send.disabled = true;
    const params = { system: system.value.trim(), temperature: Number(temperature.value), top_p: Number(topP.value), max_tokens: Number(maxTokens.value) };
    try {
      await Promise.all([a.send(text, params), sideBySide.checked && b.model.value ? b.send(text, params) : null]);
    } finally { send.disabled = false; }
  });
}
