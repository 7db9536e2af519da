// Fine-tune: the finetune.requested form with the bundled model and the shipped data set
// preselected (fields generated from the catalog's JSON Schema, as on the Emit page). Submitting
// publishes the message and opens the training job (live curves) as soon as it is queued.
import { api, query } from "./api.js";
import { el, clear } from "./dom.js";
import { field, read } from "./emit.js";

// The fields shown, with defaults for a CPU run of the bundled model (examples/finetune/smollm2-lora.yaml).
const SHOWN = {
  base_model: "smollm2-135m-instruct",
  dataset: "examples/data/facts-chat.jsonl",
  model_name: "smollm2-facts",
  max_steps: 20,
  learning_rate: 0.0005,
  lora_r: 8,
  micro_batch_size: 4,
  sequence_len: 256,
  val_set_size: 0.05,
  eval_steps: 5,
  eval_suites: ["tiny"],
};

export function renderFinetune(root, preset) {
  const formBox = el("div");
  const banner = el("div", { class: "error banner", id: "ft-error", role: "alert" });
  const note = el("p", { class: "muted", id: "ft-status" });
  const datasets = el("datalist", { id: "ft-datasets" });
  root.append(el("section", { class: "card emit" }, el("h2", {}, "Fine-tune a model"),
    el("p", { class: "muted" }, "LoRA on CPU by default. The run reports loss, learning rate, tokens/s and eval loss live on its job page; ",
      "the evaluation suites are scored on the live model as it trains and, once it is registered, on the new version (the promotion policy judges that run); deploy it from its Registry page. ",
      el("a", { href: "#/emit/finetune.requested" }, "All options")),
    formBox, note, banner, datasets));
  // "#/finetune/key=value&key=value" presets fields (used by links and by tests with a tiny model)
  const overrides = Object.fromEntries(new URLSearchParams(preset || ""));

  api("/catalog/finetune.requested").then((entry) => {
    const schema = entry.schema;
    const req = new Set(schema.required || []);
    const fields = Object.keys(SHOWN).filter((n) => schema.properties?.[n]).map((n) => {
      const f = field(n, { ...schema.properties[n], default: undefined }, schema, req.has(n));
      const v = overrides[n] ?? SHOWN[n];
      if (f.kind === "boolean") f.input.checked = v === true || v === "true";
      else f.input.value = typeof v === "string" ? v : JSON.stringify(v);
      if (n === "dataset") f.input.setAttribute("list", "ft-datasets");
      return f;
    });
    const form = el("form", { id: "ft-form", novalidate: true }, fields.map((f) => f.wrap),
      el("button", { type: "submit" }, "Start fine-tune"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const e of form.querySelectorAll(".field .error")) e.textContent = "";
      for (const w of form.querySelectorAll(".field")) w.classList.remove("invalid");
      banner.textContent = ""; note.textContent = "";
      const mark = (name, msg) => {
        const w = form.querySelector(`[data-wrap="${CSS.escape(name)}"]`);
        if (!w) return false;
        w.classList.add("invalid"); w.querySelector(".error").textContent = msg; return true;
      };
      const { data, errors } = read(fields);
      for (const [k, v] of Object.entries(overrides)) if (!(k in SHOWN)) { try { data[k] = JSON.parse(v); } catch { data[k] = v; } }
      if (Object.keys(errors).length) { for (const [n, m] of Object.entries(errors)) mark(n, m); return; }
      try {
        const env = await api("/messages", { method: "POST", body: { type: "finetune.requested", data, subject: data.model_name } });
        note.append("Requested: ", el("a", { href: `#/flow/${encodeURIComponent(env.correlationid)}` }, "flow"), " · waiting for the job…");
        for (let i = 0; i < 120 && location.hash.startsWith("#/finetune"); i++) {
          const jobs = await api(`/jobs${query({ correlationid: env.correlationid, name: "finetune", limit: 1 })}`);
          if (jobs.data.length) { location.hash = `#/jobs/${jobs.data[0].id}`; return; }
          await new Promise((r) => setTimeout(r, 500));
        }
      } catch (err) {
        banner.textContent = err.message;
        for (const d of Array.isArray(err.details) ? err.details : []) {
          const loc = (d.loc || []).filter((p) => p !== "body" && p !== "data");
          if (loc.length && !mark(String(loc[0]), d.msg)) banner.textContent += ` (${loc.join(".")}: ${d.msg})`;
        }
      }
    });
    clear(formBox).append(form);
  }).catch((err) => { banner.textContent = err.message; });
  api("/datasets").then((res) => {
    for (const d of res.data) datasets.append(el("option", { value: d.name }, `${d.name} v${d.version}`));
  }).catch(() => {});
}
