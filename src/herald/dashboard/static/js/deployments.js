// Deployments: targets with traffic sliders (Apply publishes deployment.traffic.changed), replica
// health, serving charts from the request log (latency, TTFT, tokens/s, cost), guardrail
// triggers and the drift/quality monitors' latest outcomes.
import { api, follow, query } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";
import { lineChart } from "./chart.js";

const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function charts(stats) {
  if (!stats || !stats.series.length) return el("p", { class: "muted" }, "No requests in the last hour yet: chat with it in the Playground.");
  const series = (key, scale = 1) => stats.series.filter((b) => b[key] != null).map((b) => ({ x: b.t, y: b[key] * scale }));
  const opt = (unit) => ({ xfmt: clock, unit, width: 260, height: 130 });
  return el("div", {},
    el("p", { class: "muted stats" }, `last hour: ${stats.requests} requests · ${stats.errors} errors · p50 ${ms(stats.latency_p50_s)} · p95 ${ms(stats.latency_p95_s)} · TTFT p50 ${ms(stats.ttft_p50_s)}`,
      stats.tokens_per_s != null ? ` · ${stats.tokens_per_s.toFixed(1)} tokens/s` : "", stats.cost_usd != null ? ` · $${stats.cost_usd.toFixed(4)}` : "",
      stats.versions.length ? ` · versions ${stats.versions.join(", ")}` : ""),
    el("div", { class: "charts" },
      lineChart("requests", series("requests"), opt("")),
      lineChart("latency p95 (ms)", series("latency_p95_s", 1000), opt(" ms")),
      lineChart("TTFT p50 (ms)", series("ttft_p50_s", 1000), opt(" ms")),
      lineChart("tokens/s", series("tokens_per_s"), opt("")),
      stats.cost_usd != null ? lineChart("cost (USD)", series("cost_usd"), opt(""))
        : el("p", { class: "muted" }, "cost: set serving.request_log.prices to estimate it")));
}
const ms = (s) => (s == null ? "–" : `${Math.round(s * 1000)} ms`);

function replicas(live) {
  if (!live || !live.length) return el("p", { class: "muted" }, "no replicas loaded in this process");
  return el("table", { class: "replicas" }, el("thead", {}, el("tr", {}, ["version", "weight", "replica", "state"].map((h) => el("th", {}, h)))),
    el("tbody", {}, live.flatMap((g) => (g.replicas.length ? g.replicas : [{}]).map((r, i) => el("tr", {},
      el("td", {}, i ? "" : (g.version || g.model)), el("td", {}, i ? "" : g.weight), el("td", {}, i),
      el("td", { class: "muted" }, Object.entries(r).filter(([, v]) => typeof v !== "object").map(([k, v]) => `${k}=${v}`).join(" ")))))));
}

function card(d, stats, onError) {
  const sliders = d.targets.map((t) => {
    const key = t.version || t.model;
    const out = el("output", {}, `${t.weight}`);
    const input = el("input", { type: "range", min: 0, max: 100, step: 1, value: t.weight, "data-target": key, "aria-label": `weight of ${key}`,
      oninput: () => { out.textContent = input.value; share(); node.dataset.dirty = "1"; } });
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
  const live = d.live || [];
  const node = el("section", { class: "card deployment", "data-deployment": d.name, "data-revision": d.revision },
    el("h2", {}, `${d.name} `, el("span", { class: `pill ${d.status === "ready" ? "ok" : d.status === "failed" ? "failed" : "queued"}` }, d.status),
      el("span", { class: "muted" }, ` revision ${d.revision} · serving ${d.serving_revision ?? "–"} · ${ago(d.updated_at)}`)),
    d.error ? el("pre", { class: "error" }, d.error) : null,
    el("table", {}, el("thead", {}, el("tr", {}, ["target", "replicas", "weight", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, sliders.map((s) => el("tr", { "data-row": s.key },
        el("td", {}, el("code", {}, s.t.model), s.t.version && s.t.version !== s.t.model ? el("div", { class: "muted" }, s.t.version) : null),
        el("td", {}, s.t.replicas),
        el("td", { class: "slider" }, s.input, " ", s.out),
        el("td", {}, s.pct))))),
    el("div", { class: "actions" }, apply, el("button", { class: "secondary", "data-action": "rollback", onclick: async () => {
      if (!confirm(`Roll ${d.name} back one revision?`)) return;
      try {
        const res = await api(`/deployments/${encodeURIComponent(d.name)}/rollback`, { method: "POST", body: { reason: "dashboard" } });
        fill(status, el("span", { class: "muted" }, "published ", el("a", { href: `#/flow/${encodeURIComponent(res.correlationid)}` }, res.type)));
      } catch (err) { status.textContent = err.message; }
    } }, "Roll back"), el("a", { href: "#/playground", class: "muted" }, "chat with it")), status,
    el("h3", {}, "Replicas"), replicas(live),
    el("h3", {}, "Serving"), el("div", { "data-charts": d.name }, charts(stats)));
  return node;
}

export function renderDeployments(root) {
  const box = el("div", { id: "deployments" });
  const guards = el("tbody", { id: "guardrails" });
  const monitors = el("tbody", { id: "monitors" });
  root.append(box, el("div", { class: "grid2" },
    el("section", { class: "card" }, el("h2", {}, "Guardrail triggers"),
      el("table", {}, el("thead", {}, el("tr", {}, ["when", "model", "rule", "action", "hits"].map((h) => el("th", {}, h)))), guards)),
    el("section", { class: "card" }, el("h2", {}, "Monitors (drift, quality, SLO, budget)"),
      el("table", {}, el("thead", {}, el("tr", {}, ["rule", "model", "metric", "value", "status"].map((h) => el("th", {}, h)))), monitors))));
  async function load() {
    const [res, serving] = await Promise.all([api("/deployments"), api("/dashboard/serving?minutes=60&buckets=30")]);
    // a card whose sliders the user is moving keeps them until its revision changes
    const nodes = res.data.map((d) => {
      const old = [...box.children].find((n) => n.dataset.deployment === d.name);
      if (old && old.dataset.dirty && old.dataset.revision === String(d.revision)) {
        fill(old.querySelector("[data-charts]"), charts(serving.models[d.name]));
        return old;
      }
      return card(d, serving.models[d.name]);
    });
    box.replaceChildren(...nodes);
    if (!res.data.length) box.append(el("section", { class: "card muted" }, "No deployments yet: deploy a version from its Registry page (or emit deployment.requested)."));
  }
  async function loadSide() {
    const g = await api(`/messages${query({ type: "guardrail.triggered", order: "desc", limit: 20 })}`);
    clear(guards);
    for (const e of g.data) {
      guards.append(el("tr", {}, el("td", { class: "muted" }, ago(e.time)), el("td", {}, e.data.model), el("td", {}, e.data.rule, el("div", { class: "muted" }, `${e.data.rule_type} · ${e.data.direction}`)),
        el("td", {}, el("span", { class: `pill ${e.data.action === "block" ? "failed" : "disabled"}` }, e.data.action)), el("td", {}, `${e.data.count} in ${e.data.requests} requests`)));
    }
    if (!g.data.length) guards.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no guardrail triggers")));
    const m = await api("/monitors");
    clear(monitors);
    const outcomes = new Map(m.outcomes.map((o) => [`${o.rule}`, o]));
    for (const o of m.outcomes) {
      monitors.append(el("tr", {}, el("td", {}, o.rule), el("td", {}, o.model), el("td", {}, o.metric),
        el("td", {}, o.value == null ? "–" : Number(o.value).toPrecision(3)),
        el("td", {}, el("span", { class: `pill ${o.fired ? "failed" : o.status === "ok" ? "ok" : "queued"}` }, o.status))));
    }
    for (const r of m.data.filter((r) => !outcomes.has(r.name))) {
      monitors.append(el("tr", {}, el("td", {}, r.name), el("td", { class: "muted" }, r.model || "all"), el("td", {}, r.metric), el("td", {}, "–"),
        el("td", {}, el("span", { class: "pill" }, m.enabled ? "not evaluated yet" : "monitoring off"))));
    }
    if (!m.outcomes.length && !m.data.length) monitors.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "no monitoring rules")));
  }
  load(); loadSide();
  const timer = setInterval(throttle(() => { load(); loadSide(); }, 1000), 15000); // charts fill in as requests are served
  const close = follow({ type: "deployment.ready,deployment.failed,deployment.rolledback,deployment.deleted,guardrail.triggered" }, throttle(() => { load(); loadSide(); }, 500));
  return () => { clearInterval(timer); close(); };
}
