"""Job definitions: typed functions whose signature is the parameter schema.

    @herald.job(executor="local")
    def train(dataset: str, epochs: int = 1, ctx: herald.JobContext | None = None) -> dict: ...

Parameters are validated against the signature when the job is requested, so a bad request
fails at once with a readable error instead of inside a worker.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from herald.errors import ConfigurationError, JobError
from herald.security.privilege import refuse_operator_fields

CTX_NAMES = ("ctx", "context")


@dataclass
class JobDefinition:
    name: str
    fn: Callable[..., Any]
    params_model: type[BaseModel]
    ctx_param: str | None
    executor: str | None = None
    max_attempts: int | None = None
    timeout_s: float | None = None
    description: str = ""
    origin: str = ""
    # what one attempt needs on a cluster executor: {"cpus": 2, "gpus": 1, "memory": "8GiB"}
    resources: dict[str, Any] | None = None

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated parameters as JSON-compatible values (raises :class:`JobError`; a
        parameter only the operator may set raises ``OperatorSettingRequired``)."""
        refuse_operator_fields(params, f"job {self.name!r}")
        try:
            model = self.params_model.model_validate(params)
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            first = errors[0]
            raise JobError(
                f"invalid parameters for job {self.name!r}: "
                f"{'.'.join(map(str, first['loc'])) or 'params'}: {first['msg']}",
                details=errors,
            ) from None
        return model.model_dump(mode="json", by_alias=True)

    def schema(self) -> dict[str, Any]:
        return self.params_model.model_json_schema(by_alias=True)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "executor": self.executor,
            "description": self.description,
            "parameters": self.schema(),
            "origin": self.origin,
        }


def _params_model(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], str | None]:
    sig = inspect.signature(fn)
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to Any
        hints = {}
    fields: dict[str, Any] = {}
    ctx_param = None
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigurationError(
                f"job {name!r}: *args/**kwargs are not allowed; name each parameter"
            )
        hint = hints.get(p.name, Any)
        if (
            p.name in CTX_NAMES
            or getattr(hint, "__name__", "") == "JobContext"
            or "JobContext" in str(hint)
        ):
            ctx_param = p.name
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        if hasattr(BaseModel, p.name) or p.name.startswith("model_"):
            # ``schema``, ``copy``, ``json``... are fine parameter names; keep them as the
            # public (alias) name of a field stored under a non-clashing attribute name.
            fields[f"param_{p.name}"] = (hint, Field(default, alias=p.name))
        else:
            fields[p.name] = (hint, default)
    model = create_model(
        f"{name.replace('.', '_').replace('-', '_')}_params",
        __config__=ConfigDict(
            extra="forbid", arbitrary_types_allowed=False, protected_namespaces=()
        ),
        **fields,
    )
    return model, ctx_param


class JobRegistry:
    def __init__(self) -> None:
        self._jobs: dict[str, JobDefinition] = {}

    def add(self, d: JobDefinition) -> JobDefinition:
        old = self._jobs.get(d.name)
        if old is not None and old.origin != d.origin:
            raise ConfigurationError(f"two jobs are named {d.name!r} ({old.origin} and {d.origin})")
        self._jobs[d.name] = d
        return d

    def get(self, name: str) -> JobDefinition:
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(sorted(self._jobs)) or "none"
            raise JobError(f"unknown job {name!r} (known jobs: {known})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._jobs

    def all(self) -> list[JobDefinition]:
        return sorted(self._jobs.values(), key=lambda d: d.name)

    def remove(self, name: str) -> None:
        self._jobs.pop(name, None)


default_jobs = JobRegistry()


def job(
    name: str | None = None,
    *,
    executor: str | None = None,
    max_attempts: int | None = None,
    timeout_s: float | None = None,
    registry: JobRegistry | None = None,
    resources: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function as a job; its signature is the parameter schema.

    ``resources`` (``{"cpus", "gpus", "memory"}``) is what one attempt requests on a cluster
    executor (ray); the local executors ignore it.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        job_name = name or fn.__name__
        model, ctx_param = _params_model(fn, job_name)
        d = JobDefinition(
            name=job_name,
            fn=fn,
            params_model=model,
            ctx_param=ctx_param,
            executor=executor,
            max_attempts=max_attempts,
            timeout_s=timeout_s,
            description=(fn.__doc__ or "").strip(),
            origin=f"{fn.__module__}:{fn.__qualname__}",
            resources=dict(resources) if resources else None,
        )
        (registry or default_jobs).add(d)
        fn.__herald_job__ = d  # type: ignore[attr-defined]
        return fn

    return deco
