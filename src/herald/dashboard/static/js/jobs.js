// Jobs: list by status, detail with progress, a live log tail, cancel and retry.
import { api, follow, query } from "./api.js";
import { el, clear, ago, throttle } from "./dom.js";

export function renderJobs(root) {
  const picker = el("select", { "aria-label": "status" },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) => el("option", { value: s }, s || "all")));
  const body = el("tbody", { id: "jobs" });
  root.append(el("section", { class: "card" }, el("h2", {}, "Jobs ", picker),
    el("table", {}, el("thead", {}, el("tr", {}, ["job", "status", "attempt", "progress", "created"].map((h) => el("th", {}, h)))), body)));
  async function load() {
    const res = await api(`/jobs${query({ status: picker.value, limit: 100 })}`);
    clear(body);
    for (const j of res.data) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `#/jobs/${j.id}` }, j.name), el("div", { class: "muted" }, j.id)),
        el("td", {}, el("span", { class: `pill ${j.status}` }, j.status)),
        el("td", {}, `${j.attempt}/${j.max_attempts}`),
        el("td", {}, j.progress != null ? `${Math.round(j.progress * 100)}%` : ""),
        el("td", { class: "muted" }, ago(j.created_at))));
    }
  }
  picker.addEventListener("change", load);
  const reload = throttle(load, 1000);
  const close = follow({ type: "job.requested,job.started,job.progressed,job.succeeded,job.failed,job.cancelled" }, reload);
  load();
  const timer = setInterval(reload, 5000);
  return () => { close(); clearInterval(timer); };
}

export function renderJob(root, id) {
  const head = el("div");
  const logs = el("pre", { class: "logs", id: "job-logs" });
  const error = el("div", { class: "error", role: "alert" });
  root.append(el("section", { class: "card" }, head, error, el("h3", {}, "Logs"), logs));
  let after = 0;
  async function load() {
    const j = await api(`/jobs/${encodeURIComponent(id)}`);
    const act = (verb) => el("button", { onclick: async () => {
      error.textContent = "";
      try { await api(`/jobs/${encodeURIComponent(id)}/${verb}`, { method: "POST" }); load(); } catch (err) { error.textContent = err.message; }
    } }, verb);
    clear(head).append(
      el("h2", {}, `Job ${j.name} `, el("span", { class: `pill ${j.status}` }, j.status)),
      el("p", { class: "muted" }, `${j.id} · attempt ${j.attempt}/${j.max_attempts} · ${j.executor} · `,
        el("a", { href: `#/flow/${encodeURIComponent(j.correlationid)}` }, "flow")),
      j.progress != null ? el("progress", { max: 1, value: j.progress }) : null,
      j.progress_message ? el("p", {}, j.progress_message) : null,
      j.error ? el("pre", { class: "error" }, j.error) : null,
      el("div", { class: "actions" }, ["queued", "running"].includes(j.status) ? act("cancel") : null,
        ["failed", "cancelled"].includes(j.status) ? act("retry") : null),
      el("details", {}, el("summary", {}, "parameters"), el("pre", {}, JSON.stringify(j.params, null, 2))));
    const res = await api(`/jobs/${encodeURIComponent(id)}/logs?after=${after}&limit=1000`);
    for (const line of res.data) { logs.append(`${line.line}\n`); after = line.seq; }
    while (logs.childNodes.length > 2000) logs.firstChild.remove();
    if (res.data.length) logs.scrollTop = logs.scrollHeight;
  }
  load();
  const timer = setInterval(load, 2000); // logs are not messages: tail them by polling
  return () => clearInterval(timer);
}
