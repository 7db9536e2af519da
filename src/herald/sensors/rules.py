"""Declarative sensors in YAML; filters and data mappings are CEL expressions (never ``eval``).

```yaml
sensors:
  - name: ship-large-orders
    on: acme.order.placed                 # a type or a list of types
    where: data.amount > 100.0            # CEL over: data, type, subject, source, id, correlationid
    emit:
      - type: acme.order.shipped
        data: '{"order_id": data.order_id}'   # CEL giving a map, or a literal YAML mapping
    run_job:
      name: pack
      params: '{"order": data.order_id}'
schedules:
  - name: nightly
    cron: "0 2 * * *"
    emit:
      - type: acme.report.requested
        data: {period: day}
```
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from herald.cronexpr import validate_cron
from herald.errors import ConfigurationError
from herald.messages.base import Message
from herald.messages.catalog import Catalog
from herald.messages.envelope import Envelope
from herald.sensors.base import SensorContext, SensorRegistry, SensorSpec


class CelError(ConfigurationError):
    code = "invalid_expression"


def _celpy() -> Any:
    import celpy

    return celpy


class Expression:
    """A compiled CEL expression."""

    def __init__(self, source: str, where: str) -> None:
        celpy = _celpy()
        self.source = source
        self.where = where
        env = celpy.Environment()
        try:
            self._program = env.program(env.compile(source))
        except Exception as exc:
            raise CelError(f"{where}: invalid CEL expression {source!r}: {exc}") from None

    def evaluate(self, event: Envelope) -> Any:
        celpy = _celpy()
        activation = {
            "data": celpy.json_to_cel(event.data),
            "type": celpy.json_to_cel(event.type),
            "subject": celpy.json_to_cel(event.subject or ""),
            "source": celpy.json_to_cel(event.source),
            "id": celpy.json_to_cel(event.id),
            "correlationid": celpy.json_to_cel(event.correlationid),
        }
        try:
            result = self._program.evaluate(activation)
        except Exception as exc:
            raise ValueError(f"{self.where}: CEL {self.source!r} failed: {exc}") from None
        if isinstance(result, Exception):
            raise ValueError(f"{self.where}: CEL {self.source!r} failed: {result}")
        return _to_python(result)


def _to_python(value: Any) -> Any:
    """CEL values → plain JSON-compatible Python values."""
    celpy = _celpy()
    try:
        return json.loads(json.dumps(value, cls=celpy.CELJSONEncoder))
    except Exception:
        return value


class EmitRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str
    data: str | dict[str, Any] = Field(default_factory=dict)
    subject: str | None = None


class JobRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: str | dict[str, Any] = Field(default_factory=dict)
    executor: str | None = None


class SensorRule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str
    on: list[str]
    where: str | None = None
    emit: list[EmitRule] = Field(default_factory=list)
    run_job: JobRule | None = None
    start: Literal["latest", "earliest"] = "latest"
    max_attempts: int | None = Field(default=None, ge=1)
    description: str = ""

    @field_validator("on", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ScheduleRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    cron: str
    timezone: str = "UTC"
    emit: list[EmitRule] = Field(default_factory=list)
    run_job: JobRule | None = None
    description: str = ""


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensors: list[SensorRule] = Field(default_factory=list)
    schedules: list[ScheduleRule] = Field(default_factory=list)


class _Mapping:
    """A literal mapping or a CEL expression that must give a map."""

    def __init__(self, value: str | dict[str, Any], where: str) -> None:
        self.literal = value if isinstance(value, dict) else None
        self.expr = Expression(value, where) if isinstance(value, str) else None
        self.where = where

    def evaluate(self, event: Envelope | None) -> dict[str, Any]:
        if self.literal is not None:
            return dict(self.literal)
        assert self.expr is not None
        if event is None:
            raise ValueError(f"{self.where}: CEL data needs a triggering event")
        value = self.expr.evaluate(event)
        if not isinstance(value, dict):
            raise ValueError(
                f"{self.where}: CEL {self.expr.source!r} gave {type(value).__name__}, not a map"
            )
        return value


def _emitters(
    emits: list[EmitRule], job: JobRule | None, catalog: Catalog, where: str
) -> Callable[[Envelope | None, SensorContext], None]:
    compiled = [
        (
            e.type,
            _Mapping(e.data, f"{where}.emit[{i}].data"),
            Expression(e.subject, f"{where}.emit[{i}].subject") if e.subject else None,
        )
        for i, e in enumerate(emits)
    ]
    job_params = _Mapping(job.params, f"{where}.run_job.params") if job else None

    def act(event: Envelope | None, ctx: SensorContext) -> None:
        for type_name, data, subject in compiled:
            message: Message = catalog.validate(type_name, data.evaluate(event))
            subj = str(subject.evaluate(event)) if subject and event else None
            ctx.emit(message, subject=subj)
        if job is not None and job_params is not None:
            ctx.run_job(job.name, job_params.evaluate(event), executor=job.executor)

    return act


def load_rules(path: str | Path, catalog: Catalog, registry: SensorRegistry) -> list[SensorSpec]:
    """Parse and compile a YAML rule file into sensors; raise a readable error on any problem."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ConfigurationError(f"rule file not found: {p}") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{p}: invalid YAML: {exc}") from None
    if isinstance(raw, dict):
        for rule in raw.get("sensors") or []:
            if isinstance(rule, dict) and True in rule:  # YAML 1.1 reads a bare `on:` key as true
                rule["on"] = rule.pop(True)
    try:
        rules = RuleFile.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise ConfigurationError(f"{p}: {loc}: {first['msg']}") from None
    specs = []
    for i, r in enumerate(rules.sensors):
        where = f"{p.name}: sensors[{i}] ({r.name})"
        if not r.emit and r.run_job is None:
            raise ConfigurationError(f"{where}: a rule needs emit: or run_job:")
        filt = Expression(r.where, f"{where}.where") if r.where else None
        act = _emitters(r.emit, r.run_job, catalog, where)

        def handler(msg: Any, ctx: SensorContext, _act: Any = act) -> None:
            _act(ctx.event, ctx)

        def where_fn(event: Envelope, _f: Expression | None = filt) -> bool:
            if _f is None:
                return True
            value = _f.evaluate(event)
            if not isinstance(value, bool):
                raise ValueError(f"where: {_f.source!r} gave {value!r}, not a boolean")
            return value

        specs.append(
            SensorSpec(
                name=r.name,
                types=tuple(r.on),
                handler=handler,
                where=where_fn if filt else None,
                start=r.start,
                max_attempts=r.max_attempts,
                description=r.description,
                origin=str(p),
                kind="rule",
                emits=tuple(e.type for e in r.emit),
            )
        )
    for i, sch in enumerate(rules.schedules):
        where = f"{p.name}: schedules[{i}] ({sch.name})"

        validate_cron(sch.cron, sch.timezone, where)
        act = _emitters(sch.emit, sch.run_job, catalog, where)

        def tick(msg: Any, ctx: SensorContext, _act: Any = act) -> None:
            _act(None, ctx)

        specs.append(
            SensorSpec(
                name=sch.name,
                types=(),
                handler=tick,
                description=sch.description,
                origin=str(p),
                kind="cron",
                cron=f"{sch.cron}|{sch.timezone}",
                emits=tuple(e.type for e in sch.emit),
            )
        )
    return registry.add_all(specs)
