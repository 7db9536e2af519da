// Emit: a form per message type generated from its JSON Schema; server 422s shown inline.
import { api } from "./api.js";
import { el, clear } from "./dom.js";

export function resolve(schema, root) {
  let s = schema || {};
  for (let i = 0; s.$ref && i < 10; i++) {
    const path = s.$ref.replace(/^#\//, "").split("/");
    s = path.reduce((o, k) => (o ? o[k] : undefined), root) || {};
  }
  if (s.anyOf) {
    const nonNull = s.anyOf.filter((x) => x.type !== "null");
    if (nonNull.length === 1) return { ...resolve(nonNull[0], root), nullable: true, default: s.default, title: s.title, description: s.description };
  }
  return s;
}

// One input per top-level property; nested objects and arrays are edited as JSON.
export function field(name, raw, root, required) {
  const s = resolve(raw, root);
  const id = `f-${name}`;
  const common = { id, name, "data-field": name, "aria-describedby": `${id}-err` };
  let input;
  let kind = "json";
  if (s.enum) {
    kind = "enum";
    input = el("select", common, required ? null : el("option", { value: "" }, "—"),
      s.enum.map((v) => el("option", { value: JSON.stringify(v), selected: JSON.stringify(v) === JSON.stringify(s.default) }, String(v))));
  } else if (s.type === "boolean") {
    kind = "boolean";
    input = el("input", { ...common, type: "checkbox", checked: s.default === true });
  } else if (s.type === "integer" || s.type === "number") {
    kind = s.type;
    input = el("input", { ...common, type: "text", inputmode: "decimal", value: s.default ?? "", placeholder: s.type });
  } else if (s.type === "string") {
    kind = "string";
    const long = (s.maxLength ?? 0) > 200 || /prompt|text|description|content/.test(name);
    input = long
      ? el("textarea", { ...common, rows: 3 }, s.default ?? "")
      : el("input", { ...common, type: "text", value: s.default ?? "", placeholder: s.format || "" });
  } else {
    input = el("textarea", { ...common, rows: 3, class: "json", placeholder: "JSON" }, s.default !== undefined ? JSON.stringify(s.default) : "");
  }
  const wrap = el("div", { class: "field", "data-wrap": name },
    el("label", { for: id }, name, required ? el("span", { class: "req", title: "required" }, " *") : null,
      el("span", { class: "muted" }, ` ${s.type || (s.enum ? "enum" : "json")}`)),
    input,
    s.description ? el("small", { class: "muted" }, s.description) : null,
    el("div", { class: "error", id: `${id}-err`, role: "alert" }));
  return { name, kind, input, wrap, required };
}

// Read the form; client-side checks are syntax (numbers, JSON, required), the server checks the rest.
export function read(fields) {
  const data = {};
  const errors = {};
  for (const f of fields) {
    if (f.kind === "boolean") { data[f.name] = f.input.checked; continue; }
    const v = f.input.value.trim();
    if (v === "") { if (f.required) errors[f.name] = "required"; continue; }
    if (f.kind === "string") data[f.name] = f.input.value;
    else if (f.kind === "integer" || f.kind === "number") {
      const n = Number(v);
      if (Number.isNaN(n)) errors[f.name] = `not a ${f.kind}`;
      else if (f.kind === "integer" && !Number.isInteger(n)) errors[f.name] = "not an integer";
      else data[f.name] = n;
    } else {
      try { data[f.name] = JSON.parse(v); } catch { errors[f.name] = "not valid JSON"; }
    }
  }
  return { data, errors };
}

export function renderEmit(root, preselect) {
  const picker = el("select", { id: "emit-type", "aria-label": "message type" });
  const desc = el("p", { class: "muted" });
  const formBox = el("div");
  const banner = el("div", { class: "error banner", id: "emit-error", role: "alert" });
  root.append(el("section", { class: "card emit" }, el("h2", {}, "Emit a message"),
    el("label", {}, "Type ", picker), desc, formBox, banner));
  let catalog = [];

  function build(type) {
    const entry = catalog.find((t) => t.type === type);
    clear(formBox); banner.textContent = "";
    if (!entry) return;
    desc.textContent = `${entry.description || ""} (v${entry.version})`;
    const schema = entry.schema;
    const req = new Set(schema.required || []);
    const fields = Object.entries(schema.properties || {}).map(([n, s]) => field(n, s, schema, req.has(n)));
    const subject = el("input", { name: "subject", id: "emit-subject", placeholder: "optional" });
    const corr = el("input", { name: "correlationid", id: "emit-correlationid", placeholder: "new flow if empty" });
    const form = el("form", { id: "emit-form", novalidate: true },
      fields.map((f) => f.wrap),
      el("details", {}, el("summary", {}, "envelope"),
        el("div", { class: "field" }, el("label", { for: "emit-subject" }, "subject"), subject),
        el("div", { class: "field" }, el("label", { for: "emit-correlationid" }, "correlation id"), corr)),
      el("button", { type: "submit" }, `Emit ${type}`));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const e of form.querySelectorAll(".field .error")) e.textContent = "";
      for (const w of form.querySelectorAll(".field")) w.classList.remove("invalid");
      banner.textContent = "";
      const { data, errors } = read(fields);
      const mark = (name, msg) => {
        const w = form.querySelector(`[data-wrap="${CSS.escape(name)}"]`);
        if (!w) return false;
        w.classList.add("invalid");
        w.querySelector(".error").textContent = msg;
        return true;
      };
      if (Object.keys(errors).length) { for (const [n, m] of Object.entries(errors)) mark(n, m); return; }
      const body = { type, data };
      if (subject.value.trim()) body.subject = subject.value.trim();
      if (corr.value.trim()) body.correlationid = corr.value.trim();
      try {
        const env = await api("/messages", { method: "POST", body });
        location.hash = `#/flow/${encodeURIComponent(env.correlationid)}`;
      } catch (err) {
        banner.textContent = err.message;
        for (const d of Array.isArray(err.details) ? err.details : []) {
          const loc = (d.loc || []).filter((p) => p !== "body" && p !== "data");
          if (loc.length) mark(String(loc[0]), `${d.msg}${loc.length > 1 ? ` (at ${loc.join(".")})` : ""}`);
        }
      }
    });
    formBox.append(form);
  }

  api("/catalog").then((res) => {
    catalog = res.types;
    for (const t of catalog) picker.append(el("option", { value: t.type }, t.type));
    const start = preselect && catalog.some((t) => t.type === preselect) ? preselect : catalog[0]?.type;
    picker.value = start;
    build(start);
  });
  picker.addEventListener("change", () => { history.replaceState(null, "", `#/emit/${picker.value}`); build(picker.value); });
}
