// Evaluations: runs newest first, a leaderboard per suite, a run's per-sample browser, and two
// runs of one suite side by side (paired bootstrap: difference, 95% interval, p-value).
import { api, follow, query } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";
import { pagedList } from "./paging.js";

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
  const listControls = el("div");
  const suitePick = el("select", { id: "lb-suite", "aria-label": "suite" });
  const board = el("tbody", { id: "leaderboard" });
  const boardHead = el("p", { class: "muted" });
  const picked = [];
  const compare = el("button", { id: "compare-evals", disabled: true, onclick: () => {
    location.hash = `#/evaluations/compare/${encodeURIComponent(picked.join(","))}`;
  } }, "Compare selected");
  root.append(el("div", { class: "grid" },
    el("section", { class: "card wide" }, el("h2", {}, "Evaluations ", compare),
      el("p", { class: "muted" }, "Tick a baseline, then a candidate of the same suite, to compare them side by side."),
      el("table", {}, el("thead", {}, el("tr", {}, ["", "suite", "target", "status", "primary metric", "passed", "created"].map((h) => el("th", {}, h)))), body), listControls),
    el("section", { class: "card" }, el("h2", {}, "Leaderboard ", suitePick), boardHead,
      el("table", {}, el("thead", {}, el("tr", {}, ["#", "target", "score", "passed"].map((h) => el("th", {}, h)))), board))));

  let boardGen = 0; // the leaderboard of the latest request wins (refreshes can overlap)
  async function loadBoard() {
    const g = ++boardGen;
    if (!suitePick.value) { clear(board); boardHead.textContent = ""; return; }
    const lb = await api(`/evaluations/leaderboard${query({ suite: suitePick.value })}`);
    if (g !== boardGen) return;
    clear(board);
    boardHead.textContent = `${lb.metric} (${lb.higher_is_better ? "higher" : "lower"} is better)`;
    for (const r of lb.data) {
      board.append(el("tr", {}, el("td", {}, r.rank),
        el("td", {}, el("a", { href: `#/evaluations/${encodeURIComponent(r.evaluation_id)}` }, r.target), r.model_version ? el("div", { class: "muted" }, r.model_version) : null),
        el("td", {}, fmt(r.score)), el("td", {}, r.passed == null ? "" : r.passed ? "yes" : "no")));
    }
  }
  function draw(rows) {
    clear(body);
    for (const e of rows) {
      const metric = e.primary_metric;
      const box = el("input", { type: "checkbox", "aria-label": `select ${e.id}`, "data-select": e.id, checked: picked.includes(e.id),
        disabled: e.status !== "completed", onchange: () => {
          const i = picked.indexOf(e.id);
          if (box.checked && i < 0) picked.push(e.id); else if (!box.checked && i >= 0) picked.splice(i, 1);
          compare.disabled = picked.length < 2;
        } });
      body.append(el("tr", { "data-evaluation": e.id },
        el("td", {}, box),
        el("td", {}, e.suite),
        el("td", {}, el("a", { href: `#/evaluations/${encodeURIComponent(e.id)}` }, e.target)),
        el("td", {}, el("span", { class: `pill ${e.status === "completed" ? "succeeded" : e.status}` }, e.status)),
        el("td", {}, metric ? `${metric} ${fmt(e.metrics?.[metric])}` : ""),
        el("td", {}, e.passed == null ? "" : e.passed ? "yes" : "no"),
        el("td", { class: "muted" }, ago(e.created_at))));
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "no evaluations yet")));
    const suites = [...new Set(rows.map((e) => e.suite))].sort();
    const current = suitePick.value;
    clear(suitePick);
    for (const s of suites) suitePick.append(el("option", { value: s }, s));
    if (suites.includes(current)) suitePick.value = current;
    if (suitePick.value !== boardSuite) loadBoard(); // "load more" brought new suites
    boardSuite = suitePick.value;
  }
  let boardSuite = null;
  const list = pagedList({ path: "/evaluations", pageSize: 100, id: "evaluations", noun: "evaluations", draw });
  listControls.append(list.controls);
  async function load() {
    await list.refresh();
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

export function renderCompare(root, ids) {
  const box = el("section", { class: "card", id: "eval-compare" }, el("p", { class: "muted" }, "comparing…"));
  const samples = el("tbody", { id: "compare-samples" });
  root.append(box, el("section", { class: "card" }, el("h2", {}, "Samples side by side"),
    el("table", {}, el("thead", {}, el("tr", {}, ["#", "input", "baseline output", "candidate output", "scores (baseline → candidate)"].map((h) => el("th", {}, h)))), samples)));
  const list = ids.split(",").filter(Boolean);
  const short = (x) => { const s = typeof x === "string" ? x : JSON.stringify(x); return s && s.length > 200 ? `${s.slice(0, 200)}…` : s; };
  api(`/evaluations/compare${query({ ids: list.join(",") })}`).then(async (res) => {
    const [base, ...others] = res.evaluations;
    const rows = [];
    for (const c of res.comparisons) {
      const other = others.find((e) => e.id === c.candidate);
      for (const [metric, r] of Object.entries(c.metrics)) {
        rows.push(el("tr", { "data-metric": metric }, el("td", {}, metric),
          el("td", {}, r ? num(r.mean_a) : "–"), el("td", {}, r ? num(r.mean_b) : "–"),
          el("td", {}, r ? `${r.diff >= 0 ? "+" : ""}${num(r.diff)} [${num(r.ci_low)}, ${num(r.ci_high)}]` : "no shared samples"),
          el("td", {}, r ? num(r.p_value) : ""), el("td", {}, r ? r.n : ""),
          el("td", {}, !r ? "" : el("span", { class: `pill ${r.better ? "ok" : r.worse ? "failed" : ""}` },
            r.better ? `${other.target} better` : r.worse ? `${other.target} worse` : "no significant difference"))));
      }
    }
    fill(box, el("h2", {}, `Compare on ${res.suite}`),
      el("p", {}, "baseline ", el("a", { href: `#/evaluations/${encodeURIComponent(base.id)}` }, base.target), " vs ",
        others.map((e) => el("a", { href: `#/evaluations/${encodeURIComponent(e.id)}` }, e.target))),
      el("table", {}, el("thead", {}, el("tr", {}, ["metric", "baseline", "candidate", "difference [95% CI]", "p", "n", "verdict"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
    const [a, b] = await Promise.all([base, others[0]].map((e) => api(`/evaluations/${encodeURIComponent(e.id)}/samples?limit=50`)));
    const byIdx = new Map(b.data.map((s) => [s.idx, s]));
    for (const s of a.data) {
      const t = byIdx.get(s.idx);
      samples.append(el("tr", {}, el("td", {}, s.idx), el("td", {}, short(s.input)), el("td", {}, short(s.output)), el("td", {}, t ? short(t.output) : ""),
        el("td", {}, el("code", {}, Object.entries(s.scores || {}).map(([k, v]) => `${k} ${fmt(v)} → ${t ? fmt(t.scores?.[k]) : "–"}`).join(" ")))));
    }
  }).catch((err) => { fill(box, el("p", { class: "error" }, err.message)); });
}
