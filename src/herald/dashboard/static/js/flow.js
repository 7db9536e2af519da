// Flow view: the causal graph of one correlation id, redrawn live as its messages arrive.
// Progress messages come collapsed (?progress=collapsed): one node per job and type with the count
// and the last progress, so a 100-step job is one node, not a column of a hundred.
import { api, follow, head } from "./api.js";
import { el, svg, clear, fill, throttle } from "./dom.js";
import { layout } from "./layout.js";

function label(n) {
  if (n.kind === "job") return `job ${n.type}`;
  return n.kind === "progress" ? `${n.type} ×${n.count}` : n.type;
}

function pct(p) {
  return p != null ? `${Math.round(p * 100)}%` : "";
}

// The second line of a node: a job's status, a progress node's last progress, a message's subject.
function sub(n) {
  if (n.kind === "job") return `${n.status}${n.progress != null ? ` ${pct(n.progress)}` : ""}`;
  if (n.kind === "progress") {
    const step = n.data?.step != null ? `step ${n.data.step}${n.data.max_steps ? `/${n.data.max_steps}` : ""}` : null;
    return [pct(n.progress), n.message || step].filter(Boolean).join(" · ") || `last ${new Date(n.last_time).toLocaleTimeString()}`;
  }
  return n.subject || n.source || "";
}

export function renderFlow(root, correlationid) {
  const canvas = el("div", { class: "flow-canvas", id: "flow-canvas" });
  const detail = el("aside", { class: "card detail", id: "flow-detail" },
    el("p", { class: "muted" }, "Click a node for its payload."));
  const status = el("p", { class: "muted" });
  root.append(el("section", { class: "card" },
    el("h2", {}, "Flow ", el("code", {}, correlationid)), status,
    el("div", { class: "flow" }, canvas, detail)));
  let selected = null;
  let graph = null;

  function show(n) {
    selected = n.id;
    fill(detail,
      el("h3", {}, label(n)),
      el("dl", {},
        ...[["id", n.id], ["kind", n.kind], ["status", n.status], ["subject", n.subject],
          ["source", n.source], ["messages", n.count], ["time", n.time], ["last time", n.last_time],
          ["last message", n.last_id], ["progress", n.progress != null ? pct(n.progress) : null], ["message", n.message]]
          .filter(([, v]) => v !== undefined && v !== null)
          .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
      n.kind === "job" || n.kind === "progress"
        ? el("a", { href: `#/jobs/${(n.job || n.id).replace(/^job:/, "")}` }, "job detail and logs") : null,
      n.kind === "progress" ? el("p", { class: "muted" }, `the last of ${n.count} ${n.type} messages:`) : null,
      n.data !== undefined ? el("pre", { class: "payload" }, JSON.stringify(n.data, null, 2)) : null);
    draw();
  }

  function draw() {
    if (!graph) return;
    const L = layout(graph.nodes, graph.edges);
    const s = svg("svg", { width: L.width, height: L.height, viewBox: `0 0 ${L.width} ${L.height}`, role: "img", "aria-label": "flow graph" },
      svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
        svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))));
    for (const e of L.edges) {
      const a = L.pos.get(e.from), b = L.pos.get(e.to);
      const x1 = a.x + L.nodeW, y1 = a.y + L.nodeH / 2, x2 = b.x, y2 = b.y + L.nodeH / 2;
      const mx = (x1 + x2) / 2;
      s.append(svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: `edge ${e.kind}`, "marker-end": "url(#arrow)" },
        svg("title", {}, e.kind)));
    }
    for (const n of graph.nodes) {
      const p = L.pos.get(n.id);
      const cls = `node ${n.kind} ${n.status || ""} ${n.id === selected ? "selected" : ""}`;
      s.append(svg("g", { class: cls, transform: `translate(${p.x},${p.y})`, "data-id": n.id, "data-type": n.type, ...(n.kind === "progress" ? { "data-count": n.count } : {}), tabindex: 0, onclick: () => show(n) },
        svg("rect", { width: L.nodeW, height: L.nodeH, rx: 6 }),
        svg("text", { x: 10, y: 18, class: "t1" }, label(n).slice(0, 28)),
        svg("text", { x: 10, y: 34, class: "t2" }, sub(n).slice(0, 30)),
        svg("title", {}, n.kind === "progress" ? `${n.count} ${n.type} messages; the last: ${sub(n)}` : `${n.type} ${n.id}`)));
    }
    clear(canvas).append(s);
  }

  async function load() {
    try {
      graph = await api(`/flows/${encodeURIComponent(correlationid)}?progress=collapsed`);
      const count = (kind) => graph.nodes.filter((n) => n.kind === kind);
      const messages = count("message").length + count("progress").reduce((a, n) => a + n.count, 0);
      status.textContent = `${messages} messages, ${count("job").length} jobs · live`;
      draw();
    } catch (err) {
      status.textContent = err.status === 404 ? "No messages in this flow yet; waiting…" : err.message;
    }
  }
  const reload = throttle(load, 500);
  // take the log's head, load, then follow from that head: nothing in between is missed
  let close = null;
  let gone = false;
  head().then((from) => {
    load();
    if (!gone) close = follow({ correlationid, after: from }, reload);
  });
  const timer = setInterval(reload, 5000); // job status changes between messages
  return () => { gone = true; if (close) close(); clearInterval(timer); };
}
