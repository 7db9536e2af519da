// Deployments: targets with traffic sliders; Apply publishes deployment.traffic.changed.
import { api, follow } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";

function card(d, onError) {
  const sliders = d.targets.map((t) => {
    const key = t.version || t.model;
    const out = el("output", {}, `${t.weight}`);
    const input = el("input", { type: "range", min: 0, max: 100, step: 1, value: t.weight, "data-target": key, "aria-label": `weight of ${key}`,
      oninput: () => { out.textContent = input.value; share(); } });
    return { key, t, input, out, pct: el("span", { class: "muted" }) };
  });
  function share() {
    const total = sliders.reduce((a, s) => a + Number(s.input.value), 0) || 1;
    for (const s of sliders) s.pct.textContent = ` ${(100 * Number(s.input.value) / total).toFixed(1)}% of traffic`;
  }
  share();
  const status = el("div", { class: "error", role: "alert" });
  const apply = el("button", { "data-action": "apply-traffic", onclick: async () => {
    status.textContent = "";
    const weights = Object.fromEntries(sliders.map((s) => [s.key, Number(s.input.value)]));
    try {
      const res = await api(`/deployments/${encodeURIComponent(d.name)}/traffic`, { method: "POST", body: { weights, reason: "dashboard" } });
      fill(status, el("span", { class: "muted" }, "published ", el("a", { href: `#/flow/${encodeURIComponent(res.correlationid)}` }, res.type)));
    } catch (err) { status.textContent = err.message; onError?.(err); }
  } }, "Apply traffic");
  const live = d.live || {};
  return el("section", { class: "card deployment", "data-deployment": d.name },
    el("h2", {}, `${d.name} `, el("span", { class: `pill ${d.status === "ready" ? "ok" : d.status === "failed" ? "failed" : "queued"}` }, d.status),
      el("span", { class: "muted" }, ` revision ${d.revision} · serving ${d.serving_revision ?? "–"} · ${ago(d.updated_at)}`)),
    d.error ? el("pre", { class: "error" }, d.error) : null,
    el("table", {}, el("thead", {}, el("tr", {}, ["target", "replicas", "weight", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, sliders.map((s) => el("tr", { "data-row": s.key },
        el("td", {}, el("code", {}, s.t.model), s.t.version && s.t.version !== s.t.model ? el("div", { class: "muted" }, s.t.version) : null),
        el("td", {}, s.t.replicas),
        el("td", { class: "slider" }, s.input, " ", s.out),
        el("td", {}, s.pct))))),
    el("div", { class: "actions" }, apply), status,
    Object.keys(live).length ? el("details", {}, el("summary", {}, "live replicas"), el("pre", {}, JSON.stringify(live, null, 2))) : null);
}

export function renderDeployments(root) {
  const box = el("div", { id: "deployments" });
  root.append(box);
  async function load() {
    const res = await api("/deployments");
    clear(box);
    for (const d of res.data) box.append(card(d));
    if (!res.data.length) box.append(el("section", { class: "card muted" }, "No deployments yet: emit deployment.requested from the Emit page."));
  }
  load();
  return follow({ type: "deployment.ready,deployment.failed,deployment.rolledback,deployment.deleted" }, throttle(load, 500));
}
