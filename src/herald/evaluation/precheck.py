"""What an ``evaluation.requested`` can be checked for when it is published, so a request that
cannot run is refused at once (422 naming the field) instead of failing in its job seconds later
(``POST /v1/messages`` stored an unknown suite; its job failed afterwards).

The job keeps its own checks (the same functions, through
:func:`herald.evaluation.jobs.prepare`): a suite file or a model version can still disappear
between publish and run. Only local, cheap facts are checked: the suite resolves and parses, the
target string is understood, a ``models:/`` target resolves in the registry, a checkpoint folder
exists, and a named secret is defined for the endpoint's host. Served model names,
``deployment:`` targets and endpoints are left to the job: whether they answer is known only by
asking them (the egress policy still refuses forbidden URLs at publish).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from herald.errors import HeraldError, NotFound

if TYPE_CHECKING:
    from herald.evaluation.suites import Suite
    from herald.evaluation.targets import TargetSpec
    from herald.registry import Registry
    from herald.settings import Settings


def check_evaluation_request(message: Any, registry: Registry | None, settings: Settings) -> None:
    """Raise a 422 :class:`HeraldError` naming the field that cannot work (403 as it is)."""
    data = message.payload() if hasattr(message, "payload") else dict(message)
    checked_suite(str(data.get("suite") or ""), settings)
    spec = checked_target(
        str(data.get("target") or ""),
        settings,
        model=data.get("model"),
        api_key_secret=data.get("api_key_secret"),
    )
    if spec.kind == "registry" and registry is not None:
        resolved_version(spec, registry)


def checked_suite(ref: str, settings: Settings) -> Suite:
    """The suite ``ref`` names (a shipped or configured name, or a YAML path), or a 422."""
    from herald.evaluation.settings import evaluation_settings, suite_search_paths
    from herald.evaluation.suites import load_suite
    from herald.security.files import FilePolicy

    es = evaluation_settings(settings)
    try:
        return load_suite(
            ref,
            suite_search_paths(Path(settings.home), es),
            policy=FilePolicy.from_settings(settings),
        )
    except HeraldError as exc:
        raise field_error("suite", exc) from None


def checked_target(
    ref: str, settings: Settings, *, model: str | None = None, api_key_secret: str | None = None
) -> TargetSpec:
    """The parsed and authorized target (egress policy, named secret), or a 422 (403 as is)."""
    from herald.evaluation.targets import authorize_target, parse_target

    try:
        return authorize_target(parse_target(ref, model=model), settings, api_key_secret)
    except HeraldError as exc:
        raise field_error("target", exc) from None


def resolved_version(spec: TargetSpec, registry: Registry) -> Any:
    """The model version a ``models:/`` target names, or a 422."""
    try:
        return registry.resolve(spec.ref)
    except NotFound as exc:
        raise field_error("target", exc) from None


def field_error(field: str, exc: HeraldError) -> HeraldError:
    """``exc`` as a 422 whose message starts with the field (403 refusals are kept as they
    are: the file and egress policies answer the same everywhere)."""
    if exc.status == 403 or exc.message.startswith(f"{field}: "):
        return exc
    err = HeraldError(f"{field}: {exc.message}", details=exc.details)
    err.code, err.status = exc.code, 422
    return err


__all__ = [
    "check_evaluation_request",
    "checked_suite",
    "checked_target",
    "field_error",
    "resolved_version",
]
