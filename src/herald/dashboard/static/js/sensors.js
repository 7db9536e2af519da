// Sensors, dead letters and approvals: enable/disable sensors, inspect and replay dead letters,
// grant or deny approval requests waiting for a person (closed-loop retraining asks here).
import { api, follow } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";
import { pagedList } from "./paging.js";

export function renderSensors(root) {
  const sensors = el("tbody", { id: "sensor-list" });
  const dead = el("tbody", { id: "dead-letters" });
  const approvals = el("tbody", { id: "approvals" });
  const deadFilter = el("select", { id: "dl-status", "aria-label": "dead letter status" },
    ["dead", "replay_requested", "replayed", ""].map((s) => el("option", { value: s }, s || "all")));
  const status = el("div", { class: "error banner", role: "alert", id: "sensors-error" });
  const detail = el("div", { id: "dl-detail" });
  const deadControls = el("div");
  root.append(status,
    el("section", { class: "card" }, el("h2", {}, "Approvals waiting for you"),
      el("table", {}, el("thead", {}, el("tr", {}, ["requested", "action", "reason", "by", "flow", ""].map((h) => el("th", {}, h)))), approvals)),
    el("section", { class: "card" }, el("h2", {}, "Sensors"),
      el("table", {}, el("thead", {}, el("tr", {}, ["sensor", "on", "status", "lag", "cursor", ""].map((h) => el("th", {}, h)))), sensors)),
    el("section", { class: "card" }, el("h2", {}, "Dead letters ", deadFilter),
      el("p", { class: "muted" }, "Messages a sensor failed on after all its attempts. Replay re-runs the sensor on the same message."),
      el("table", {}, el("thead", {}, el("tr", {}, ["when", "sensor", "message", "attempts", "error", "status", ""].map((h) => el("th", {}, h)))), dead),
      deadControls, detail));

  async function run(fn, done) {
    status.textContent = "";
    try { const res = await fn(); done?.(res); } catch (err) { status.textContent = err.message; }
  }

  async function loadSensors() {
    const res = await api("/sensors");
    clear(sensors);
    for (const s of res.data) {
      const st = !s.enabled ? "disabled" : s.last_error ? "error" : "ok";
      const verb = s.enabled ? "disable" : "enable";
      sensors.append(el("tr", { "data-sensor": s.name },
        el("td", {}, s.name, s.description ? el("div", { class: "muted" }, s.description) : null),
        el("td", { class: "muted" }, (s.on || []).join(", ") || (s.cron ? `cron ${s.cron}` : "")),
        el("td", {}, el("span", { class: `pill ${st}`, title: s.last_error || "" }, st),
          s.last_error ? el("div", { class: "error" }, String(s.last_error).slice(0, 200)) : null),
        el("td", {}, s.lag ?? "–"),
        el("td", { class: "muted" }, s.cursor ?? "–"),
        el("td", {}, el("button", { class: s.enabled ? "secondary" : "", "data-action": verb,
          onclick: () => run(() => api(`/sensors/${encodeURIComponent(s.name)}/${verb}`, { method: "POST" }), loadSensors) }, verb))));
    }
    if (!res.data.length) sensors.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no sensors")));
  }

  async function showDead(d) {
    fill(detail, el("h3", {}, `Dead letter ${d.id}`), el("pre", { class: "payload" }, d.error));
    try {
      const msg = await api(`/messages/${encodeURIComponent(d.event_id)}`);
      detail.append(el("p", {}, el("a", { href: `#/flow/${encodeURIComponent(msg.correlationid)}` }, "open its flow")),
        el("pre", { class: "payload", id: "dl-payload" }, JSON.stringify(msg.data, null, 2)));
    } catch (err) { detail.append(el("p", { class: "error" }, err.message)); }
  }

  const deadList = pagedList({ path: "/dead-letters", filters: () => ({ status: deadFilter.value }), id: "dead-letters", noun: "dead letters", draw: drawDead });
  const loadDead = () => deadList.refresh();
  deadControls.append(deadList.controls);
  function drawDead(rows) {
    clear(dead);
    for (const d of rows) {
      dead.append(el("tr", { "data-dead-letter": d.id },
        el("td", { class: "muted" }, ago(d.created_at)),
        el("td", {}, d.sensor),
        el("td", {}, el("a", { href: "#/sensors", onclick: (ev) => { ev.preventDefault(); showDead(d); } }, d.event_type),
          el("div", { class: "muted" }, `#${d.event_seq}`)),
        el("td", {}, d.attempts),
        el("td", { class: "error" }, String(d.error).split("\n")[0].slice(0, 160)),
        el("td", {}, el("span", { class: `pill ${d.status === "dead" ? "failed" : "queued"}` }, d.status)),
        el("td", {}, d.status === "dead" ? el("button", { "data-action": "replay",
          onclick: () => run(() => api(`/dead-letters/${encodeURIComponent(d.id)}/replay`, { method: "POST" }), loadDead) }, "replay") : null)));
    }
    if (!rows.length) dead.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no dead letters")));
  }

  async function loadApprovals() {
    const res = await api("/approvals");
    clear(approvals);
    for (const a of res.data) {
      const decide = (verb) => el("button", { class: verb === "deny" ? "secondary" : "", "data-action": verb,
        onclick: () => run(() => api(`/approvals/${encodeURIComponent(a.id)}/${verb}`, { method: "POST", body: { by: "dashboard" } }), loadApprovals) }, verb);
      approvals.append(el("tr", { "data-approval": a.id },
        el("td", { class: "muted" }, ago(a.time)),
        el("td", {}, el("code", {}, a.data.action_type),
          el("details", {}, el("summary", {}, "payload"), el("pre", { class: "payload" }, JSON.stringify(a.data.action, null, 2)))),
        el("td", {}, a.data.reason || ""),
        el("td", { class: "muted" }, a.data.requested_by || a.source || ""),
        el("td", {}, a.correlationid ? el("a", { href: `#/flow/${encodeURIComponent(a.correlationid)}` }, "flow") : ""),
        el("td", {}, el("div", { class: "actions" }, decide("grant"), decide("deny")))));
    }
    if (!res.data.length) approvals.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "nothing waiting")));
  }

  const loadAll = () => { loadSensors(); loadDead(); loadApprovals(); };
  deadFilter.addEventListener("change", () => deadList.reset());
  loadAll();
  const timer = setInterval(throttle(loadAll, 1000), 5000); // lag and dead letters are not messages
  const close = follow({ type: "approval.requested,approval.granted,approval.denied" }, throttle(loadApprovals, 500));
  return () => { clearInterval(timer); close(); };
}
