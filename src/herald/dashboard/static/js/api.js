// The /v1 API with the session cookie; unsafe methods carry the CSRF token (double submit).
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.details = err.details;
  }
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)herald_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(`/v1${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) { location.href = "/login"; throw new ApiError(401, null); }
  const data = resp.headers.get("content-type")?.includes("json") ? await resp.json() : null;
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v != null) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

// The log's head *before* a history query: following from it after the query misses nothing
// (callers drop the few duplicates by id).
export async function head() {
  return (await api("/messages?limit=1&order=desc")).head;
}

// Follow /v1/messages/stream; returns a function that closes it.
export function follow(params, onMessage) {
  const src = new EventSource(`/v1/messages/stream${query(params)}`);
  const dot = document.getElementById("live");
  src.onopen = () => dot?.classList.add("on");
  src.onerror = () => dot?.classList.remove("on");
  src.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  return () => { src.close(); dot?.classList.remove("on"); };
}
