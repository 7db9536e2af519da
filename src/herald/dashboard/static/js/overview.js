// Overview: the live event stream with filters, sensors with status and lag, jobs by state,
// deployments with their traffic split, and recent alerts.
import { api, follow, head, query } from "./api.js";
import { el, clear, ago, throttle } from "./dom.js";

const MAX_ROWS = 200; // the stream never grows the page without bound

function eventRow(e) {
  return el("tr", { dataset: { id: e.id } },
    el("td", { class: "muted", title: e.time }, new Date(e.time).toLocaleTimeString()),
    el("td", {}, el("code", { class: "type" }, e.type)),
    el("td", {}, e.subject || ""),
    el("td", {}, e.correlationid
      ? el("a", { href: `#/flow/${encodeURIComponent(e.correlationid)}`, class: "corr" }, e.correlationid.slice(0, 12))
      : ""),
    el("td", { class: "muted" }, e.source || ""));
}

export function renderOverview(root) {
  const filters = { type: "", subject: "", correlationid: "" };
  const form = el("form", { class: "filters" },
    el("input", { name: "type", placeholder: "type (comma separated)", "aria-label": "type filter" }),
    el("input", { name: "subject", placeholder: "subject", "aria-label": "subject filter" }),
    el("input", { name: "correlationid", placeholder: "correlation id", "aria-label": "correlation filter" }),
    el("button", { type: "submit" }, "Filter"));
  const body = el("tbody", { id: "events" });
  const sensors = el("tbody", { id: "sensors" });
  const jobs = el("div", { id: "jobs-summary" });
  const deployments = el("tbody", { id: "overview-deployments" });
  const alerts = el("ul", { class: "alerts", id: "overview-alerts" });
  root.append(
    el("div", { class: "grid" },
      el("section", { class: "card wide" },
        el("h2", {}, "Live events"), form,
        el("table", { class: "events" },
          el("thead", {}, el("tr", {}, ["time", "type", "subject", "flow", "source"].map((h) => el("th", {}, h)))),
          body)),
      el("div", { class: "side" },
        el("section", { class: "card" }, el("h2", {}, el("a", { href: "#/deployments" }, "Deployments")),
          el("table", {}, el("thead", {}, el("tr", {}, ["name", "status", "traffic"].map((h) => el("th", {}, h)))), deployments)),
        el("section", { class: "card" }, el("h2", {}, "Recent alerts"), alerts),
        el("section", { class: "card" }, el("h2", {}, el("a", { href: "#/jobs" }, "Jobs")), jobs),
        el("section", { class: "card" },
          el("h2", {}, el("a", { href: "#/sensors" }, "Sensors")),
          el("table", {}, el("thead", {}, el("tr", {}, ["sensor", "status", "lag"].map((h) => el("th", {}, h)))), sensors)))));

  let close = null;
  async function load() {
    if (close) close();
    clear(body);
    const from = await head();
    const res = await api(`/messages${query({ ...filters, order: "desc", limit: 50 })}`);
    const seen = new Set(res.data.map((e) => e.id));
    for (const e of res.data) body.append(eventRow(e));
    close = follow({ ...filters, after: from }, (e) => {
      if (seen.has(e.id)) return;
      body.prepend(eventRow(e));
      while (body.children.length > MAX_ROWS) body.lastChild.remove();
      refresh();
    });
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const fd = new FormData(form);
    for (const k of Object.keys(filters)) filters[k] = fd.get(k).trim();
    load();
  });

  async function loadSensors() {
    const res = await api("/sensors");
    clear(sensors);
    for (const s of res.data) {
      const status = !s.enabled ? "disabled" : s.last_error ? "error" : "ok";
      sensors.append(el("tr", {},
        el("td", { title: `on ${(s.on || []).join(", ") || (s.cron ? `cron ${s.cron}` : "a schedule")}` }, s.name),
        el("td", {}, el("span", { class: `pill ${status}`, title: s.last_error || "" }, status)),
        el("td", {}, s.lag ?? "–")));
    }
    if (!res.data.length) sensors.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "no sensors")));
  }
  async function loadJobs() {
    const groups = await Promise.all(["running", "queued", "failed"].map(async (st) => [st, (await api(`/jobs?status=${st}&limit=10`)).data]));
    clear(jobs);
    for (const [st, list] of groups) {
      jobs.append(el("h3", {}, `${st} `, el("span", { class: `pill ${st}` }, list.length)));
      const ul = el("ul", { class: "jobs" });
      for (const j of list) ul.append(el("li", {}, el("a", { href: `#/jobs/${j.id}` }, j.name), " ", el("span", { class: "muted" }, ago(j.created_at))));
      jobs.append(ul);
    }
  }
  async function loadDeployments() {
    const res = await api("/deployments");
    clear(deployments);
    for (const d of res.data) {
      const total = d.targets.reduce((a, t) => a + t.weight, 0) || 1;
      deployments.append(el("tr", { "data-deployment": d.name },
        el("td", {}, el("a", { href: "#/deployments", title: d.name }, d.name)),
        el("td", {}, el("span", { class: `pill ${d.status === "ready" ? "ok" : d.status === "failed" ? "failed" : "queued"}` }, d.status)),
        el("td", {}, el("div", { class: "split", title: "traffic split" }, d.targets.map((t, i) => {
          const share = `${(t.version || t.model).replace(/^models:\//, "")} ${Math.round(100 * t.weight / total)}%`;
          return el("span", { class: `share s${i % 4}`, title: share, style: { flex: String(Math.max(t.weight, 1)) } }, share); // ellipsized
        })))));
    }
    if (!res.data.length) deployments.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "no deployments")));
  }
  async function loadAlerts() {
    const res = await api("/dashboard/alerts?limit=8");
    clear(alerts);
    for (const a of res.data) {
      const d = a.data || {};
      const what = d.metric ? `${d.model || ""} ${d.metric} ${d.value != null ? Number(d.value).toPrecision(3) : ""}`
        : d.reason || d.rule || d.name || d.error || "";
      alerts.append(el("li", { "data-type": a.type },
        el("code", { class: `alert-type ${a.type.replace(/\./g, "-")}` }, a.type), " ",
        el("span", {}, String(what).slice(0, 120)), " ",
        el("a", { href: `#/flow/${encodeURIComponent(a.correlationid)}`, class: "muted" }, ago(a.time))));
    }
    if (!res.data.length) alerts.append(el("li", { class: "muted" }, "no alerts"));
  }
  const refresh = throttle(() => { loadSensors(); loadJobs(); loadDeployments(); loadAlerts(); }, 1000);
  load();
  refresh();
  const timer = setInterval(refresh, 5000);
  return () => { if (close) close(); clearInterval(timer); };
}
