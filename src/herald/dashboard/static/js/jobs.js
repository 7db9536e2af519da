// Jobs: list by status (cursor-paged: "load more"), detail with progress, a live log tail, cancel and retry.
import { api, follow, head as logHead, query } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";
import { lineChart } from "./chart.js";
import { pagedList } from "./paging.js";

export function renderJobs(root) {
  const picker = el("select", { "aria-label": "status" },
    ["", "queued", "running", "succeeded", "failed", "cancelled"].map((s) => el("option", { value: s }, s || "all")));
  const body = el("tbody", { id: "jobs" });
  const list = pagedList({ path: "/jobs", filters: () => ({ status: picker.value }), id: "jobs", noun: "jobs", draw });
  root.append(el("section", { class: "card" }, el("h2", {}, "Jobs ", picker),
    el("table", {}, el("thead", {}, el("tr", {}, ["job", "status", "attempt", "progress", "created"].map((h) => el("th", {}, h)))), body), list.controls));
  function draw(rows) {
    clear(body);
    for (const j of rows) {
      body.append(el("tr", { "data-job": j.id },
        el("td", {}, el("a", { href: `#/jobs/${j.id}` }, j.name), el("div", { class: "muted" }, j.id)),
        el("td", {}, el("span", { class: `pill ${j.status}` }, j.status)),
        el("td", {}, `${j.attempt}/${j.max_attempts}`),
        el("td", {}, j.progress != null ? `${Math.round(j.progress * 100)}%` : ""),
        el("td", { class: "muted" }, ago(j.created_at))));
    }
  }
  const load = () => list.refresh();
  picker.addEventListener("change", () => list.reset());
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
  const charts = el("div", { class: "charts", id: "job-charts" });
  root.append(el("section", { class: "card" }, head, error, charts, el("h3", {}, "Logs"), logs));
  let after = 0;
  let closeStream = null;
  let curves = false;
  let gone = false;
  const steps = new Map(); // step -> merged training.progressed data, from the log then live

  function drawCharts() {
    clear(charts);
    if (!steps.size) return;
    const rows = [...steps.values()].sort((a, b) => a.step - b.step);
    for (const [key, title] of [["loss", "loss"], ["learning_rate", "learning rate"],
      ["tokens_per_second", "tokens/s"], ["eval_loss", "eval loss"], ["grad_norm", "grad norm"]]) {
      const pts = rows.filter((r) => r[key] != null).map((r) => ({ x: r.step, y: r[key] }));
      if (pts.length) charts.append(lineChart(title, pts));
    }
  }
  function addProgress(e) {
    if (e.type !== "training.progressed" || e.data.job_id !== id) return false;
    // a step can report twice (its training loss, then its evaluation): merge the non-null values
    const merged = { ...(steps.get(e.data.step) || {}) };
    for (const [k, v] of Object.entries(e.data)) if (v !== null && v !== undefined) merged[k] = v;
    steps.set(e.data.step, merged);
    return true;
    return false;
  }
  async function startCurves(correlationid) {
    const from = await logHead();
    let res = { data: [], next_after: 0 };
    for (let page = 0; page < 20; page++) { // up to 20k steps of history, then live
      res = await api(`/messages${query({ type: "training.progressed", correlationid, after: res.next_after, limit: 1000 })}`);
      res.data.forEach(addProgress);
      if (res.data.length < 1000) break;
    }
    drawCharts();
    const redraw = throttle(drawCharts, 500);
    if (gone) return;
    closeStream = follow({ type: "training.progressed", correlationid, after: from }, (e) => { if (addProgress(e)) redraw(); });
  }

  async function load() {
    const j = await api(`/jobs/${encodeURIComponent(id)}`);
    if (!curves) { curves = true; startCurves(j.correlationid); }
    const act = (verb) => el("button", { onclick: async () => {
      error.textContent = "";
      try { await api(`/jobs/${encodeURIComponent(id)}/${verb}`, { method: "POST" }); load(); } catch (err) { error.textContent = err.message; }
    } }, verb);
    fill(head,
      el("h2", {}, `Job ${j.name} `, el("span", { class: `pill ${j.status}` }, j.status)),
      el("p", { class: "muted" }, `${j.id} · attempt ${j.attempt}/${j.max_attempts} · ${j.executor} · `,
        el("a", { href: `#/flow/${encodeURIComponent(j.correlationid)}` }, "flow")),
      j.progress != null || j.status === "succeeded"
        ? el("progress", { max: 1, value: j.status === "succeeded" ? 1 : j.progress }) : null,
      j.progress_message ? el("p", {}, j.progress_message) : null,
      j.name === "finetune" && j.params?.model_name ? el("p", { class: "next", id: "job-next" },
        j.status === "succeeded" ? "Done: the result is registered as " : "When it finishes, the result is registered as ",
        el("a", { href: `#/registry/${encodeURIComponent(j.params.model_name)}` }, j.params.model_name),
        " — evaluate it and deploy it as a canary from there.") : null,
      j.error ? el("pre", { class: "error" }, j.error) : null,
      j.result != null ? el("details", {}, el("summary", {}, "result"), el("pre", {}, JSON.stringify(j.result, null, 2))) : null,
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
  return () => { gone = true; clearInterval(timer); if (closeStream) closeStream(); };
}
