"""The capability manifest: each capability declares itself once, here.

A capability is a folder of Herald (training, registry, evaluation, …) that brings message types,
sensors and jobs (``plugins``: modules every process imports), a REST surface (``routes``:
modules defining ``router(h: Herald) -> fastapi.APIRouter``, mounted under ``/v1``) and CLI
command groups (``cli``: ``(command, module)`` pairs whose module defines ``app: typer.Typer``).
The composition root (:mod:`herald.bootstrap`), the API (:mod:`herald.api.routes`) and the CLI
(:mod:`herald.cli.groups`) all read :func:`capabilities` — adding a capability is one entry.

A package outside Herald adds one through the ``herald.capabilities`` entry-point group, each
entry point naming a :class:`Capability`::

    [project.entry-points."herald.capabilities"]
    billing = "acme_billing.herald:CAPABILITY"

Plugin modules must import quickly: heavy libraries (torch, transformers) are imported inside
job functions, not at module level (every job subprocess imports every plugin module).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points

from herald.errors import ConfigurationError

__all__ = ["BUILTIN", "Capability", "capabilities", "cli_groups", "plugin_modules", "route_modules"]

ENTRY_POINT_GROUP = "herald.capabilities"


@dataclass(frozen=True)
class Capability:
    """What one capability brings; every part is optional."""

    name: str
    plugins: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    cli: tuple[tuple[str, str], ...] = ()
    summary: str = ""


# Herald's own, in load order (plugins) — the API mounts the routes in the same order.
BUILTIN: tuple[Capability, ...] = (
    Capability(
        "serving",
        plugins=("herald.serving.batch.job",),
        routes=("herald.api.routes.serving",),
        cli=(("chat", "herald.cli.serving"), ("keys", "herald.cli.keys")),
        summary="the OpenAI-compatible gateway, batches and client keys",
    ),
    Capability(
        "training",
        plugins=("herald.training.job",),
        cli=(("finetune", "herald.cli.training"),),
        summary="LoRA/QLoRA/full fine-tuning from YAML with live progress",
    ),
    Capability(
        "registry",
        plugins=("herald.registry.sensors",),
        routes=("herald.api.routes.registry",),
        cli=(("models", "herald.cli.registry"), ("runs", "herald.cli.runs")),
        summary="models, versions, aliases, lineage and experiment runs",
    ),
    Capability(
        "datasets",
        plugins=("herald.datasets.jobs",),
        cli=(("datasets", "herald.cli.datasets"),),
        summary="versioned data sets (their REST routes live with the registry's)",
    ),
    Capability(
        "rag",
        plugins=("herald.rag.jobs",),
        routes=("herald.api.routes.rag",),
        cli=(("rag", "herald.cli.rag"),),
        summary="ingestion, hybrid retrieval and chains with citations",
    ),
    Capability(
        "evaluation",
        plugins=("herald.evaluation.jobs",),
        routes=("herald.api.routes.evaluation",),
        cli=(("eval", "herald.cli.evaluation"),),
        summary="the Omni-Evaluator and the promotion policy",
    ),
    Capability(
        "deployments",
        plugins=("herald.serving.deployments.sensors",),
        routes=("herald.api.routes.deployments",),
        cli=(("deploy", "herald.cli.deploy"),),
        summary="canary, A/B and blue-green deployments and progressive rollout",
    ),
    Capability(
        "monitoring",
        plugins=("herald.monitoring.sensors",),
        routes=("herald.api.routes.monitoring",),
        cli=(("monitors", "herald.cli.monitoring"), ("approvals", "herald.cli.approvals")),
        summary="drift, quality and SLO rules, feedback and approvals",
    ),
    Capability(
        "demo",
        plugins=("herald.demo.sensors",),
        cli=(("demo", "herald.cli.demo"),),
        summary="the closed loop from one message (acts only inside demo.requested flows)",
    ),
    Capability(
        "prompts",
        plugins=("herald.prompts",),
        routes=("herald.api.routes.prompts",),
        cli=(("prompts", "herald.cli.prompts"),),
        summary="the prompt registry",
    ),
    Capability(
        "alerting",
        plugins=("herald.alerting.webhooks",),
        summary="webhook delivery (its sensors come from settings)",
    ),
    Capability("dashboard", routes=("herald.api.routes.dashboard",), summary="the web UI's API"),
    Capability("uploads", routes=("herald.api.routes.uploads",), summary="CLI file uploads"),
)


def capabilities() -> tuple[Capability, ...]:
    """Herald's capabilities, then those of installed packages (``herald.capabilities``)."""
    found = list(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cap = ep.load()
        except Exception as exc:
            raise ConfigurationError(
                f"capability entry point {ep.name} ({ep.value}) failed to load: {exc}"
            ) from exc
        if not isinstance(cap, Capability):
            raise ConfigurationError(
                f"capability entry point {ep.name} ({ep.value}) is a {type(cap).__name__}, "
                "not a herald.capabilities.Capability"
            )
        found.append(cap)
    names = [c.name for c in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(f"capability declared twice: {', '.join(twice)}")
    commands = [cmd for c in found for cmd, _ in c.cli]
    clash = sorted({n for n in commands if commands.count(n) > 1})
    if clash:
        raise ConfigurationError(f"CLI command declared by two capabilities: {', '.join(clash)}")
    return tuple(found)


def plugin_modules() -> tuple[str, ...]:
    return tuple(m for c in capabilities() for m in c.plugins)


def route_modules() -> tuple[str, ...]:
    return tuple(m for c in capabilities() for m in c.routes)


def cli_groups() -> tuple[tuple[str, str], ...]:
    return tuple(g for c in capabilities() for g in c.cli)
