// Registry: models and a model's versions (both cursor-paged), versions with their evaluations, aliases with history, lineage, model cards,
// version compare; promote/archive publish messages; "Deploy" creates a deployment or adds the
// version to one as a canary (deployment.requested / deployment.traffic.changed).
import { api, follow, query } from "./api.js";
import { el, clear, fill, ago, throttle } from "./dom.js";
import { pagedList } from "./paging.js";

const MODEL_EVENTS = "model.registered,model.promoted,model.archived";
const num = (x) => {
  if (x && typeof x === "object" && typeof x.value === "number") x = x.value;
  return typeof x !== "number" ? (x ?? "") : Number.isInteger(x) ? String(x) : x.toPrecision(3);
};

export function renderRegistry(root) {
  const body = el("tbody", { id: "models" });
  const list = pagedList({ path: "/registry/models", pageSize: 100, id: "models", noun: "models", draw });
  root.append(el("section", { class: "card" }, el("h2", {}, "Registered models"),
    el("table", {}, el("thead", {}, el("tr", {}, ["model", "latest", "versions", "aliases", "kind", "updated"].map((h) => el("th", {}, h)))), body), list.controls));
  function draw(rows) {
    clear(body);
    for (const m of rows) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `#/registry/${encodeURIComponent(m.name)}` }, m.name)),
        el("td", {}, `v${m.latest_version}`),
        el("td", {}, m.versions),
        el("td", {}, Object.entries(m.aliases).map(([a, v]) => el("span", { class: "pill" }, `${a} → v${v}`))),
        el("td", { class: "muted" }, m.kind),
        el("td", { class: "muted" }, ago(m.updated_at))));
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no models registered yet")));
  }
  const load = () => list.refresh();
  load();
  return follow({ type: MODEL_EVENTS }, throttle(load, 1000));
}

export function renderModel(root, name) {
  const headBox = el("div");
  const versions = el("tbody", { id: "versions" });
  const history = el("tbody", { id: "alias-history" });
  const error = el("div", { class: "error banner", role: "alert", id: "registry-error" });
  const deployBox = el("section", { class: "card", id: "deploy-box" });
  const compareBox = el("section", { class: "card", id: "compare-box" });
  let model = null;
  let panelsKey = "";
  const evals = new Map(); // version -> evaluations
  root.append(el("section", { class: "card" }, headBox, error,
    el("table", {}, el("thead", {}, el("tr", {}, ["version", "status", "aliases", "kind", "metrics", "evaluations", "lineage", "created", "actions"].map((h) => el("th", {}, h)))), versions)),
  deployBox, compareBox,
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
  function evalCell(version) {
    const list = evals.get(version) || [];
    return list.slice(0, 3).map((e) => el("div", {}, el("a", { href: `#/evaluations/${encodeURIComponent(e.id)}` }, e.suite), " ",
      e.status === "completed" && e.primary_metric ? `${e.primary_metric} ${num(e.metrics?.[e.primary_metric])}` : el("span", { class: `pill ${e.status === "completed" ? "succeeded" : e.status}` }, e.status),
      e.passed === false ? el("span", { class: "pill failed" }, "below threshold") : null));
  }
  function lineage(v) {
    return [v.base_model ? `base ${v.base_model}` : null, v.dataset ? `data ${v.dataset}` : null,
      v.job_id ? el("a", { href: `#/jobs/${encodeURIComponent(v.job_id)}` }, "training job") : null,
      v.lineage?.correlationid ? el("a", { href: `#/flow/${encodeURIComponent(v.lineage.correlationid)}` }, "flow") : null]
      .filter(Boolean).flatMap((x) => [x, el("br")]);
  }
  async function loadEvals(m) {
    await Promise.all(m.versions.slice(0, 20).map(async (v) => {
      const res = await api(`/evaluations${query({ model_version: v.uri, limit: 10 })}`);
      evals.set(v.version, res.data);
      const cell = versions.querySelector(`[data-evals="${v.version}"]`);
      if (cell) fill(cell, evalCell(v.version));
    }));
  }
  async function drawDeploy(m) {
    const live = m.versions.filter((v) => v.status !== "archived");
    if (!live.length) { clear(deployBox); return; }
    const deps = (await api("/deployments")).data;
    const ver = el("select", { id: "deploy-version", "aria-label": "version to deploy" }, live.map((v) => el("option", { value: v.uri }, `v${v.version}`)));
    const target = el("select", { id: "deploy-target", "aria-label": "deployment" },
      deps.map((d) => el("option", { value: d.name }, `canary in ${d.name}`)), el("option", { value: "" }, "new deployment"));
    const newName = el("input", { id: "deploy-name", value: name.toLowerCase().replace(/[^a-z0-9._-]/g, "-").slice(0, 60), size: 18, "aria-label": "new deployment name" });
    const weight = el("input", { id: "deploy-weight", type: "range", min: 1, max: 100, value: 10, "aria-label": "canary weight" });
    const wout = el("output", {}, "10");
    weight.addEventListener("input", () => { wout.textContent = weight.value; });
    const backend = el("select", { id: "deploy-backend", "aria-label": "backend" }, ["", "transformers", "llamacpp", "fake"].map((b) => el("option", { value: b }, b || "auto backend")));
    const sync = () => { newName.hidden = target.value !== ""; weight.disabled = target.value === ""; };
    target.addEventListener("change", sync); sync();
    const out = el("div", { id: "deploy-result", role: "status" });
    const go = el("button", { "data-action": "deploy", onclick: async () => {
      clear(out);
      const t = { model: ver.value, weight: Number(weight.value) };
      if (backend.value) t.backend = backend.value;
      try {
        const res = target.value
          ? await api(`/deployments/${encodeURIComponent(target.value)}/traffic`, { method: "POST", body: { add: [t], reason: `canary ${ver.value} from the dashboard` } })
          : await api("/deployments", { method: "POST", body: { name: newName.value.trim(), targets: [{ ...t, weight: 100 }], reason: "dashboard" } });
        out.append(el("span", { class: "muted" }, "published ", el("a", { href: `#/flow/${encodeURIComponent(res.correlationid)}` }, res.type), " · "),
          el("a", { href: "#/deployments" }, "watch it on Deployments"), " · ", el("a", { href: "#/playground" }, "chat with it"));
      } catch (err) { out.append(el("span", { class: "error" }, err.message)); }
    } }, "Deploy");
    const suite = el("select", { id: "eval-suite", "aria-label": "suite" });
    const evalVer = el("select", { id: "eval-version", "aria-label": "version to evaluate" }, live.map((v) => el("option", { value: v.uri }, `v${v.version}`)));
    api("/dashboard/suites").then((res) => { for (const x of res.data) suite.append(el("option", { value: x.name, selected: x.name === "tiny" }, x.name)); });
    const evalOut = el("div", { id: "eval-result", role: "status" });
    const evaluate = el("button", { "data-action": "evaluate", onclick: async () => {
      clear(evalOut);
      try {
        const res = await api("/evaluations", { method: "POST", body: { target: evalVer.value, suite: suite.value } });
        evalOut.append(el("span", { class: "muted" }, "requested · "), el("a", { href: `#/evaluations/${encodeURIComponent(res.evaluation_id)}` }, "follow the evaluation"));
      } catch (err) { evalOut.append(el("span", { class: "error" }, err.message)); }
    } }, "Evaluate");
    fill(deployBox, el("h2", {}, "Evaluate"),
      el("div", { class: "filters" }, evalVer, el("label", {}, "on suite ", suite), evaluate), evalOut,
      el("h2", {}, "Deploy"),
      el("div", { class: "filters" }, ver, target, newName, el("label", {}, "weight ", weight, " ", wout), backend, go), out);
  }
  function drawCompare(m) {
    if (m.versions.length < 2) { clear(compareBox); return; }
    const pick = (id, i) => el("select", { id, "aria-label": id }, m.versions.map((v, j) => el("option", { value: v.version, selected: j === i }, `v${v.version}`)));
    const a = pick("cmp-a", 1), b = pick("cmp-b", 0);
    const table = el("tbody", { id: "compare-versions" });
    function draw() {
      const va = m.versions.find((v) => String(v.version) === a.value), vb = m.versions.find((v) => String(v.version) === b.value);
      clear(table);
      const row = (k, x, y, delta) => el("tr", { "data-key": k }, el("td", {}, k), el("td", {}, x ?? ""), el("td", {}, y ?? ""), el("td", { class: "muted" }, delta ?? ""));
      for (const k of [...new Set([...Object.keys(va.metrics || {}), ...Object.keys(vb.metrics || {})])].sort()) {
        const x = va.metrics?.[k], y = vb.metrics?.[k];
        table.append(row(`metric ${k}`, x != null ? num(x) : null, y != null ? num(y) : null, x != null && y != null ? `${y - x >= 0 ? "+" : ""}${num(y - x)}` : null));
      }
      const ea = new Map((evals.get(va.version) || []).filter((e) => e.status === "completed").map((e) => [e.suite, e]));
      for (const eb of (evals.get(vb.version) || []).filter((e) => e.status === "completed")) {
        const e0 = ea.get(eb.suite);
        if (!e0) continue;
        table.append(el("tr", {}, el("td", {}, `evaluation ${eb.suite}`), el("td", {}, num(e0.metrics?.[e0.primary_metric])), el("td", {}, num(eb.metrics?.[eb.primary_metric])),
          el("td", {}, el("a", { href: `#/evaluations/compare/${encodeURIComponent(`${e0.id},${eb.id}`)}` }, "paired comparison"))));
      }
      for (const k of ["base_model", "dataset", "kind", "status"]) if (va[k] !== vb[k]) table.append(row(k, va[k], vb[k]));
      for (const k of [...new Set([...Object.keys(va.config || {}), ...Object.keys(vb.config || {})])].sort()) {
        const x = JSON.stringify(va.config?.[k]), y = JSON.stringify(vb.config?.[k]);
        if (x !== y) table.append(row(`config ${k}`, x, y));
      }
      if (!table.children.length) table.append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "no differences recorded")));
    }
    a.addEventListener("change", draw); b.addEventListener("change", draw);
    fill(compareBox, el("h2", {}, "Compare versions ", a, " → ", b),
      el("table", {}, el("thead", {}, el("tr", {}, ["", "A", "B", "B − A"].map((h) => el("th", {}, h)))), table));
    draw();
  }
  function versionRow(v) {
    return el("tr", { "data-version": v.version },
      el("td", {}, `v${v.version}`, el("div", {}, el("a", { href: `/v1/registry/models/${encodeURIComponent(name)}/versions/${v.version}/card`, target: "_blank" }, "card"))),
      el("td", {}, el("span", { class: `pill ${v.status === "archived" ? "cancelled" : "ok"}` }, v.status)),
      el("td", {}, v.aliases.join(", ")),
      el("td", { class: "muted" }, v.kind),
      el("td", {}, el("code", {}, Object.entries(v.metrics || {}).slice(0, 4).map(([k, x]) => `${k}=${typeof x === "number" ? x.toPrecision(3) : x}`).join(" "))),
      el("td", { class: "evals", "data-evals": v.version }, evalCell(v.version)),
      el("td", { class: "muted" }, lineage(v)),
      el("td", { class: "muted" }, ago(v.created_at)),
      el("td", {}, actions(v)));
  }
  let head = null; // the model without its versions (GET …?versions_limit=0)
  // the versions shown: cursor pages of 50, newest first ("load more" for older ones)
  const vlist = pagedList({ path: `/registry/models/${encodeURIComponent(name)}/versions`, pageSize: 50, id: "versions", noun: "versions", draw: (rows) => { drawVersions(rows).catch(showError); } });
  versions.closest("table").after(vlist.controls);
  function showError(err) { error.textContent = err.message; }
  async function drawVersions(rows) {
    clear(versions);
    for (const v of rows) versions.append(versionRow(v));
    if (!head) return;
    const m = { ...head, versions: rows };
    model = m;
    await loadEvals(m);
    // redraw the deploy and compare panels only when the versions change (keep the user's picks)
    const key = rows.map((v) => `${v.version}:${v.status}`).join(",");
    if (m === model && key !== panelsKey) { panelsKey = key; drawCompare(m); await drawDeploy(m); }
  }
  async function load() {
    // the head (latest version, every alias) without the versions: they come in pages
    head = await api(`/registry/models/${encodeURIComponent(name)}${query({ versions_limit: 0 })}`);
    fill(headBox, el("h2", {}, `${head.name} `, el("code", {}, head.uri), " ", el("span", { class: "muted" }, `latest v${head.latest_version}`)),
      el("p", {}, Object.entries(head.aliases).map(([a, v]) => el("span", { class: "pill ok" }, `${a} → v${v}`))));
    await vlist.refresh();
    const hist = await api(`/registry/models/${encodeURIComponent(name)}/aliases/history`);
    clear(history);
    for (const x of hist.data) {
      history.append(el("tr", {}, el("td", { class: "muted" }, new Date(x.time).toLocaleString()), el("td", {}, x.alias),
        el("td", {}, x.action), el("td", {}, x.version != null ? `v${x.version}` : ""),
        el("td", {}, x.previous_version != null ? `v${x.previous_version}` : ""), el("td", {}, x.reason || "")));
    }
  }
  load().catch(showError);
  return follow({ type: `${MODEL_EVENTS},evaluation.completed,evaluation.failed` }, throttle(() => load().catch(showError), 500));
}
