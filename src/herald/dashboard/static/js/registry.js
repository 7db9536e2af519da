// Registry: models, versions, aliases with history; promote/archive publish messages.
import { api, follow } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";

const MODEL_EVENTS = "model.registered,model.promoted,model.archived";

export function renderRegistry(root) {
  const body = el("tbody", { id: "models" });
  root.append(el("section", { class: "card" }, el("h2", {}, "Registered models"),
    el("table", {}, el("thead", {}, el("tr", {}, ["model", "latest", "versions", "aliases", "kind", "updated"].map((h) => el("th", {}, h)))), body)));
  async function load() {
    const res = await api("/registry/models");
    clear(body);
    for (const m of res.data) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `#/registry/${encodeURIComponent(m.name)}` }, m.name)),
        el("td", {}, `v${m.latest_version}`),
        el("td", {}, m.versions),
        el("td", {}, Object.entries(m.aliases).map(([a, v]) => el("span", { class: "pill" }, `${a} → v${v}`))),
        el("td", { class: "muted" }, m.kind),
        el("td", { class: "muted" }, ago(m.updated_at))));
    }
    if (!res.data.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no models registered yet")));
  }
  load();
  return follow({ type: MODEL_EVENTS }, throttle(load, 1000));
}

export function renderModel(root, name) {
  const head = el("div");
  const versions = el("tbody", { id: "versions" });
  const history = el("tbody", { id: "alias-history" });
  const error = el("div", { class: "error banner", role: "alert", id: "registry-error" });
  root.append(el("section", { class: "card" }, head, error,
    el("table", {}, el("thead", {}, el("tr", {}, ["version", "status", "aliases", "kind", "metrics", "created", "actions"].map((h) => el("th", {}, h)))), versions)),
  el("section", { class: "card" }, el("h2", {}, "Alias history"),
    el("table", {}, el("thead", {}, el("tr", {}, ["time", "alias", "action", "version", "from", "reason"].map((h) => el("th", {}, h)))), history)));

  async function act(path, payload) {
    error.textContent = "";
    try {
      const env = await api(path, { method: "POST", body: payload });
      error.append(el("span", { class: "muted" }, "published ", el("a", { href: `#/flow/${encodeURIComponent(env.correlationid)}` }, env.type)));
    } catch (err) { error.textContent = err.message; }
  }
  function actions(v) {
    if (v.status === "archived") return el("span", { class: "muted" }, "archived");
    const alias = el("input", { value: "champion", size: 10, "aria-label": `alias for v${v.version}` });
    const base = `/registry/models/${encodeURIComponent(name)}/versions/${v.version}`;
    return el("div", { class: "actions" }, alias,
      el("button", { "data-action": "promote", onclick: () => act(`${base}/promote`, { alias: alias.value.trim() }) }, "promote"),
      el("button", { class: "secondary", "data-action": "archive", onclick: () => { if (confirm(`Archive ${name} v${v.version}?`)) act(`${base}/archive`, {}); } }, "archive"));
  }
  async function load() {
    const m = await api(`/registry/models/${encodeURIComponent(name)}`);
    fill(head, el("h2", {}, `${m.name} `, el("code", {}, m.uri)),
      el("p", {}, Object.entries(m.aliases).map(([a, v]) => el("span", { class: "pill ok" }, `${a} → v${v}`))));
    clear(versions);
    for (const v of m.versions) {
      versions.append(el("tr", { "data-version": v.version },
        el("td", {}, `v${v.version}`, el("div", {}, el("a", { href: `/v1/registry/models/${encodeURIComponent(name)}/versions/${v.version}/card`, target: "_blank" }, "card"))),
        el("td", {}, el("span", { class: `pill ${v.status === "archived" ? "cancelled" : "ok"}` }, v.status)),
        el("td", {}, v.aliases.join(", ")),
        el("td", { class: "muted" }, v.kind),
        el("td", {}, el("code", {}, Object.entries(v.metrics || {}).slice(0, 4).map(([k, x]) => `${k}=${typeof x === "number" ? x.toPrecision(3) : x}`).join(" "))),
        el("td", { class: "muted" }, ago(v.created_at)),
        el("td", {}, actions(v))));
    }
    const hist = await api(`/registry/models/${encodeURIComponent(name)}/aliases/history`);
    clear(history);
    for (const x of hist.data) {
      history.append(el("tr", {}, el("td", { class: "muted" }, new Date(x.time).toLocaleString()), el("td", {}, x.alias),
        el("td", {}, x.action), el("td", {}, x.version != null ? `v${x.version}` : ""),
        el("td", {}, x.previous_version != null ? `v${x.previous_version}` : ""), el("td", {}, x.reason || "")));
    }
  }
  load();
  return follow({ type: MODEL_EVENTS }, throttle(load, 500));
}
