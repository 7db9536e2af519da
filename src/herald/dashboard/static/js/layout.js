// Layered left-to-right layout of a causal DAG: longest-path layers, then barycentre ordering.
export function layout(nodes, edges, { colW = 230, rowH = 64, nodeW = 190, nodeH = 44, pad = 20 } = {}) {
  const ids = new Set(nodes.map((n) => n.id));
  const es = edges.filter((e) => ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
  const parents = new Map(nodes.map((n) => [n.id, []]));
  for (const e of es) parents.get(e.to).push(e.from);
  // longest path from the roots; causation follows time, but guard against cycles anyway
  const layer = new Map();
  const visiting = new Set();
  function depth(id) {
    if (layer.has(id)) return layer.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const d = parents.get(id).reduce((m, p) => Math.max(m, depth(p) + 1), 0);
    visiting.delete(id);
    layer.set(id, d);
    return d;
  }
  for (const n of nodes) depth(n.id);
  const columns = [];
  for (const n of nodes) (columns[layer.get(n.id)] ||= []).push(n);
  const pos = new Map();
  columns.forEach((col, x) => {
    // order by the mean row of parents (barycentre), then by time, to keep edges short and stable
    const key = (n) => {
      const ps = parents.get(n.id).map((p) => pos.get(p)?.row).filter((r) => r !== undefined);
      return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : -1;
    };
    col.sort((a, b) => key(a) - key(b) || String(a.time).localeCompare(String(b.time)));
    col.forEach((n, row) => pos.set(n.id, { row, x: pad + x * colW, y: pad + row * rowH }));
  });
  const rows = Math.max(1, ...columns.map((c) => c.length));
  return {
    pos, edges: es, nodeW, nodeH,
    width: pad * 2 + Math.max(1, columns.length) * colW - (colW - nodeW),
    height: pad * 2 + rows * rowH - (rowH - nodeH),
  };
}
