// Hash router: each view is `render(root, arg) -> cleanup`.
import { api } from "./api.js";
import { clear } from "./dom.js";
import { renderOverview } from "./overview.js";
import { renderFlow } from "./flow.js";
import { renderEmit } from "./emit.js";
import { renderJobs, renderJob } from "./jobs.js";
import { renderRegistry, renderModel } from "./registry.js";
import { renderDeployments } from "./deployments.js";
import { renderPlayground } from "./playground.js";
import { renderEvaluations, renderEvaluation, renderCompare } from "./evaluations.js";
import { renderSensors } from "./sensors.js";
import { renderFinetune } from "./finetune.js";

const routes = [
  [/^#?\/?$/, "overview", renderOverview],
  [/^#\/flow\/(.+)$/, "overview", renderFlow],
  [/^#\/emit(?:\/(.+))?$/, "emit", renderEmit],
  [/^#\/jobs\/(.+)$/, "jobs", renderJob],
  [/^#\/jobs$/, "jobs", renderJobs],
  [/^#\/registry\/(.+)$/, "registry", renderModel],
  [/^#\/registry$/, "registry", renderRegistry],
  [/^#\/evaluations\/compare\/(.+)$/, "evaluations", renderCompare],
  [/^#\/evaluations\/(.+)$/, "evaluations", renderEvaluation],
  [/^#\/evaluations$/, "evaluations", renderEvaluations],
  [/^#\/deployments$/, "deployments", renderDeployments],
  [/^#\/playground$/, "playground", renderPlayground],
  [/^#\/sensors$/, "sensors", renderSensors],
  [/^#\/finetune(?:\/(.+))?$/, "finetune", renderFinetune],
];

let cleanup = null;

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const root = clear(document.getElementById("view"));
  const hash = location.hash || "#/";
  for (const [re, nav, render] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
    cleanup = render(root, m[1] ? decodeURIComponent(m[1]) : undefined) || null;
    return;
  }
  root.textContent = `No page at ${hash}`;
}

document.getElementById("goto-flow").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = new FormData(ev.target).get("id").trim();
  if (id) location.hash = `#/flow/${encodeURIComponent(id)}`;
});
document.getElementById("logout").addEventListener("click", async () => {
  const m = document.cookie.match(/(?:^|;\s*)herald_csrf=([^;]+)/);
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": m ? decodeURIComponent(m[1]) : "" } });
  location.href = "/login";
});
window.addEventListener("hashchange", route);
route();
export { api };
