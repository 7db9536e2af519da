// A small inline-SVG line chart: one series, x = step, min/max labels on both axes.
import { el, svg } from "./dom.js";

function fmt(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(2) : v.toPrecision(3);
}

// `xfmt` labels the x axis (default "step N"); `unit` follows the latest value in the caption.
export function lineChart(title, points, { width = 320, height = 160, xfmt = (x) => `step ${x}`, unit = "" } = {}) {
  const pts = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const box = el("figure", { class: "chart", "data-chart": title }, el("figcaption", {}, title,
    pts.length ? el("span", { class: "muted" }, ` ${fmt(pts[pts.length - 1].y)}${unit}`) : null));
  if (!pts.length) { box.append(el("p", { class: "muted" }, "no data yet")); return box; }
  const m = { l: 52, r: 8, t: 8, b: 22 };
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  const d = pts.map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
  box.append(svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title },
    svg("line", { x1: m.l, y1: height - m.b, x2: width - m.r, y2: height - m.b, class: "axis" }),
    svg("line", { x1: m.l, y1: m.t, x2: m.l, y2: height - m.b, class: "axis" }),
    svg("text", { x: m.l - 4, y: m.t + 8, class: "tick", "text-anchor": "end" }, fmt(y1)),
    svg("text", { x: m.l - 4, y: height - m.b, class: "tick", "text-anchor": "end" }, fmt(y0)),
    svg("text", { x: m.l, y: height - 6, class: "tick" }, xfmt(x0)),
    svg("text", { x: width - m.r, y: height - 6, class: "tick", "text-anchor": "end" }, xfmt(x1).replace(/^step /, "")),
    svg("path", { d, class: "series" }),
    ...pts.length < 60 ? pts.map((p) => svg("circle", { cx: X(p.x), cy: Y(p.y), r: 2, class: "dot" }, svg("title", {}, `${xfmt(p.x)}: ${p.y}`))) : []));
  return box;
}
