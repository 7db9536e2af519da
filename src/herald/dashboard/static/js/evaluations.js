// Evaluations: runs newest first, a leaderboard per suite, and a run's per-sample browser.
import { api, follow, query } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";

const num = (x) => (Number.isInteger(x) ? String(x) : Math.abs(x) >= 100 ? x.toFixed(1) : x.toFixed(4));
// A metric is a number or {value, ci_low, ci_high, n, ...}: show the value and its 95% interval.
function fmt(x) {
  if (typeof x === "number") return num(x);
  if (x && typeof x === "object" && typeof x.value === "number") {
    return x.ci_low != null && x.ci_high != null && x.ci_low !== x.ci_high
      ? `${num(x.value)} [${num(x.ci_low)}, ${num(x.ci_high)}]` : num(x.value);
  }
  return x ?? "";
}

export function renderEvaluations(root) {
  const body = el("tbody", { id: "evaluations" });
  const suitePick = el("select", { id: "lb-suite", "aria-label": "suite" });
  const board = el("tbody", { id: "leaderboard" });
  const boardHead = el("p", { class: "muted" });
  root.append(el("div", { class: "grid" },
    el("section", { class: "card wide" }, el("h2", {}, "Evaluations"),
      el("table", {}, el("thead", {}, el("tr", {}, ["suite", "target", "status", "primary metric", "passed", "created"].map((h) => el("th", {}, h)))), body)),
    el("section", { class: "card" }, el("h2", {}, "Leaderboard ", suitePick), boardHead,
      el("table", {}, el("thead", {}, el("tr", {}, ["#", "target", "score", "passed"].map((h) => el("th", {}, h)))), board))));

  async function loadBoard() {
    clear(board); boardHead.textContent = "";
    if (!suitePick.value) return;
    const lb = await api(`/evaluations/leaderboard${query({ suite: suitePick.value })}`);
    boardHead.textContent = `${lb.metric} (${lb.higher_is_better ? "higher" : "lower"} is better)`;
    for (const r of lb.data) {
      board.append(el("tr", {}, el("td", {}, r.rank),
        el("td", {}, el("a", { href: `#/evaluations/${encodeURIComponent(r.evaluation_id)}` }, r.target), r.model_version ? el("div", { class: "muted" }, r.model_version) : null),
        el("td", {}, fmt(r.score)), el("td", {}, r.passed == null ? "" : r.passed ? "yes" : "no")));
    }
  }
  async function load() {
    const res = await api("/evaluations?limit=100");
    clear(body);
    for (const e of res.data) {
      const metric = e.primary_metric;
      body.append(el("tr", {},
        el("td", {}, e.suite),
        el("td", {}, el("a", { href: `#/evaluations/${encodeURIComponent(e.id)}` }, e.target)),
        el("td", {}, el("span", { class: `pill ${e.status === "completed" ? "succeeded" : e.status}` }, e.status)),
        el("td", {}, metric ? `${metric} ${fmt(e.metrics?.[metric])}` : ""),
        el("td", {}, e.passed == null ? "" : e.passed ? "yes" : "no"),
        el("td", { class: "muted" }, ago(e.created_at))));
    }
    if (!res.data.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no evaluations yet")));
    const suites = [...new Set(res.data.map((e) => e.suite))].sort();
    const current = suitePick.value;
    clear(suitePick);
    for (const s of suites) suitePick.append(el("option", { value: s }, s));
    if (suites.includes(current)) suitePick.value = current;
    await loadBoard();
  }
  suitePick.addEventListener("change", loadBoard);
  load();
  return follow({ type: "evaluation.completed,evaluation.failed,evaluation.requested" }, throttle(load, 1000));
}

export function renderEvaluation(root, id) {
  const head = el("div");
  const failedOnly = el("input", { type: "checkbox", id: "failed-only" });
  const samples = el("tbody", { id: "samples" });
  const more = el("button", { class: "secondary" }, "more");
  root.append(el("section", { class: "card" }, head),
    el("section", { class: "card" }, el("h2", {}, "Samples ", el("label", { class: "muted" }, failedOnly, " failed only")),
      el("table", {}, el("thead", {}, el("tr", {}, ["#", "input", "output", "scores", "errors"].map((h) => el("th", {}, h)))), samples), more));
  let offset = 0;
  const short = (x) => { const s = typeof x === "string" ? x : JSON.stringify(x); return s && s.length > 300 ? `${s.slice(0, 300)}…` : s; };
  async function page(reset) {
    if (reset) { offset = 0; clear(samples); }
    const res = await api(`/evaluations/${encodeURIComponent(id)}/samples${query({ offset, limit: 50, failed: failedOnly.checked ? "true" : "" })}`);
    for (const s of res.data) {
      samples.append(el("tr", {}, el("td", {}, s.idx), el("td", {}, short(s.input)), el("td", {}, short(s.output)),
        el("td", {}, el("code", {}, Object.entries(s.scores || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(" "))),
        el("td", { class: "error" }, Object.values(s.errors || {}).join("; "))));
    }
    offset += res.data.length;
    more.hidden = res.data.length < 50;
  }
  async function load() {
    const e = await api(`/evaluations/${encodeURIComponent(id)}`);
    fill(head, el("h2", {}, `${e.suite} · ${e.target} `, el("span", { class: `pill ${e.status === "completed" ? "succeeded" : e.status}` }, e.status)),
      el("p", { class: "muted" }, `${e.done ?? 0}/${e.total} samples · ${e.failed_items ?? 0} failed · `,
        e.correlationid ? el("a", { href: `#/flow/${encodeURIComponent(e.correlationid)}` }, "flow") : null),
      e.error ? el("pre", { class: "error" }, e.error) : null,
      el("table", {}, el("tbody", {}, Object.entries(e.metrics || {}).map(([k, v]) =>
        el("tr", {}, el("td", {}, k), el("td", {}, fmt(v)),
          el("td", { class: "muted" }, v && typeof v === "object" ? ["n", "p50", "p95", "errors"].filter((f) => v[f] != null).map((f) => `${f} ${num(v[f])}`).join(" · ") : ""),
          el("td", { class: "muted" }, e.thresholds?.[k] != null ? `threshold ${e.thresholds[k]}` : ""))))));
  }
  failedOnly.addEventListener("change", () => page(true));
  more.addEventListener("click", () => page(false));
  load(); page(true);
}
