// Cursor-paged lists: the first page, then "load more" appends the next page by the API's
// next_cursor (never an offset, so rows created meanwhile neither repeat nor vanish). At most
// CAP rows stay in the DOM: past it the list moves on to a window of older rows, with a note and
// a way back to the newest. Refreshes (live events, timers) re-read the rows shown, from the
// window's start, in one request.
import { api, query } from "./api.js";
import { el } from "./dom.js";

export const CAP = 1000;

// path: a list endpoint under /v1 ("/jobs"); filters(): its current filters; draw(rows): renders
// the rows (replacing what was there); pageSize: rows per "load more"; id: DOM id prefix.
export function pagedList({ path, filters = () => ({}), draw, pageSize = 50, id, noun = "rows" }) {
  let start = null; // cursor of the window's first row (null: the newest)
  let next = null; // cursor after the window's last row (null: nothing older)
  let rows = [];
  let gen = 0; // drops answers that a newer request made stale
  let busy = false; // a "load more" in flight: refreshes wait for it
  const more = el("button", { class: "secondary", id: `${id}-more`, hidden: true, onclick: () => loadMore() }, "load more");
  const newest = el("button", { class: "secondary", id: `${id}-newest`, hidden: true, onclick: () => reset() }, "back to newest");
  const note = el("span", { class: "muted", id: `${id}-note` });
  const controls = el("div", { class: "paging", id: `${id}-paging` }, more, " ", newest, " ", note);

  function show() {
    more.hidden = !next;
    newest.hidden = start === null;
    note.textContent = start !== null
      ? `older ${noun} (at most ${CAP} are kept on the page)`
      : rows.length ? `${rows.length} ${noun}${next ? ", more below" : ""}` : "";
    draw(rows);
  }
  async function refresh() {
    if (busy) return;
    const g = ++gen;
    const limit = Math.min(Math.max(rows.length, pageSize), CAP);
    const res = await api(`${path}${query({ ...filters(), limit, cursor: start })}`);
    if (g !== gen) return;
    rows = res.data; next = res.next_cursor; show();
  }
  async function loadMore() {
    if (!next || busy) return;
    busy = true;
    const g = ++gen;
    try {
      const res = await api(`${path}${query({ ...filters(), limit: pageSize, cursor: next })}`);
      if (g !== gen) return;
      if (rows.length + res.data.length > CAP) { start = next; rows = res.data; } // a new window
      else rows = rows.concat(res.data);
      next = res.next_cursor;
      show();
    } finally { busy = false; }
  }
  // filters changed, or back to the top
  function reset() { start = null; next = null; rows = []; busy = false; return refresh(); }
  return { controls, refresh, reset, rows: () => rows };
}
