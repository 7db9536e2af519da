"""YAML rules: compile to sensors; CEL filters and mappings; readable configuration errors."""

from __future__ import annotations

import builtins
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald.errors import ConfigurationError, MessageValidationError
from herald.messages import Catalog, Envelope, Message
from herald.sensors import SensorContext, SensorRegistry, SensorSpec
from herald.sensors.rules import Expression, load_rules


class Placed(Message, type="unit.order.placed", register=False):
    order_id: str
    amount: float


class Shipped(Message, type="unit.order.shipped", register=False):
    order_id: str
    priority: bool = False


class Report(Message, type="unit.report.requested", register=False):
    period: str
    copies: int = 1


@pytest.fixture
def catalog() -> Catalog:
    c = Catalog()
    for cls in (Placed, Shipped, Report):
        c.register(cls)
    return c


@pytest.fixture
def registry() -> SensorRegistry:
    return SensorRegistry()


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def placed(order_id: str = "o-1", amount: float = 150.0, **kw: Any) -> Envelope:
    return Envelope(type="unit.order.placed", data={"order_id": order_id, "amount": amount}, **kw)


def run(spec: SensorSpec, event: Envelope) -> SensorContext:
    ctx = SensorContext(event=event, sensor=spec.name)
    spec.handler(None, ctx)
    return ctx


FULL = """
sensors:
  - name: ship-large-orders
    "on": unit.order.placed
    where: data.amount > 100.0
    description: Ship the big ones.
    emit:
      - type: unit.order.shipped
        data: '{"order_id": data.order_id, "priority": data.amount > 1000.0}'
        subject: '"order/" + data.order_id'
    run_job:
      name: pack
      params: '{"order": data.order_id, "boxes": 2}'
      executor: inline
schedules:
  - name: nightly-report
    cron: "0 2 * * *"
    timezone: Europe/Paris
    emit:
      - type: unit.report.requested
        data: {period: day, copies: 2}
"""


# --- compiling ------------------------------------------------------------------------------


def test_rule_file_compiles_into_sensor_specs(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(tmp_path, FULL)
    specs = load_rules(path, catalog, registry)

    assert [s.name for s in specs] == ["ship-large-orders", "nightly-report"]
    assert registry.all() == sorted(specs, key=lambda s: s.name)
    rule, cron = specs
    assert rule.kind == "rule"
    assert rule.types == ("unit.order.placed",)
    assert rule.emits == ("unit.order.shipped",)
    assert rule.description == "Ship the big ones."
    assert rule.origin == str(path)
    assert rule.where is not None
    assert cron.kind == "cron"
    assert cron.types == ()
    assert cron.cron == "0 2 * * *|Europe/Paris"
    assert cron.emits == ("unit.report.requested",)


def test_documented_unquoted_on_key_is_accepted(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    """The rules.py docstring writes ``on:`` unquoted; YAML 1.1 reads a bare ``on`` as True."""
    path = write(
        tmp_path,
        """
        sensors:
          - name: ship
            on: unit.order.placed
            emit:
              - type: unit.order.shipped
                data: '{"order_id": data.order_id}'
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    assert spec.types == ("unit.order.placed",)


def test_on_accepts_a_list_and_defaults(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: any-order
            "on": [unit.order.placed, unit.order.shipped]
            start: earliest
            max_attempts: 2
            run_job: {name: audit}
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    assert spec.types == ("unit.order.placed", "unit.order.shipped")
    assert spec.where is None
    assert spec.start == "earliest"
    assert spec.max_attempts == 2
    assert spec.emits == ()
    ctx = run(spec, placed())
    assert ctx.emitted == []
    assert [(j.name, j.params) for j in ctx.jobs] == [("audit", {})]


def test_empty_file_gives_no_sensors(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    assert load_rules(write(tmp_path, ""), catalog, registry) == []
    assert registry.all() == []


# --- CEL filters and mappings -------------------------------------------------------------


def test_where_filter_true_and_false(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    [spec, *_] = load_rules(write(tmp_path, FULL), catalog, registry)
    assert spec.where is not None
    assert spec.where(placed(amount=150.0)) is True
    assert spec.where(placed(amount=100.0)) is False
    assert spec.where(placed(amount=5.0)) is False


def test_where_sees_envelope_attributes(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: vip
            "on": unit.order.placed
            where: >-
              subject.startsWith("vip/") && type == "unit.order.placed"
              && source == "shop" && correlationid == "flow-1" && size(id) > 0
            run_job: {name: pack}
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    assert spec.where is not None
    assert spec.where(placed(subject="vip/1", source="shop", correlationid="flow-1")) is True
    assert spec.where(placed(subject="std/1", source="shop", correlationid="flow-1")) is False
    assert spec.where(placed(source="shop", correlationid="flow-1")) is False  # no subject
    assert spec.where(placed(subject="vip/1", source="shop")) is False


def test_where_must_give_a_boolean(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: not-bool
            "on": unit.order.placed
            where: data.amount
            run_job: {name: pack}
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    assert spec.where is not None
    with pytest.raises(ValueError, match="not a boolean"):
        spec.where(placed())


def test_where_on_a_missing_field_is_an_error_not_a_match(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: missing
            "on": unit.order.placed
            where: data.nope > 1
            run_job: {name: pack}
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    assert spec.where is not None
    with pytest.raises(ValueError, match="missing"):
        spec.where(placed())


def test_cel_data_mapping_is_validated_against_the_emitted_type(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    [spec, *_] = load_rules(write(tmp_path, FULL), catalog, registry)
    ctx = run(spec, placed("o-7", 5000.0))
    [(message, subject)] = ctx.emitted
    assert isinstance(message, Shipped)
    assert message == Shipped(order_id="o-7", priority=True)
    assert subject == "order/o-7"
    [job] = ctx.jobs
    assert job.name == "pack"
    assert job.params == {"order": "o-7", "boxes": 2}
    assert isinstance(job.params["boxes"], int)
    assert job.executor == "inline"

    ctx = run(spec, placed("o-8", 200.0))
    assert ctx.emitted[0][0] == Shipped(order_id="o-8", priority=False)


def test_cel_mapping_that_does_not_fit_the_type_is_refused(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: wrong-shape
            "on": unit.order.placed
            emit:
              - type: unit.order.shipped
                data: '{"order_id": data.amount * 2.0}'
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    with pytest.raises(MessageValidationError) as info:
        run(spec, placed())
    assert info.value.details[0]["loc"] == ["order_id"]


def test_cel_mapping_must_give_a_map(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: list-not-map
            "on": unit.order.placed
            emit:
              - type: unit.order.shipped
                data: '[data.order_id]'
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    with pytest.raises(ValueError, match="not a map"):
        run(spec, placed())


def test_literal_mapping(tmp_path: Path, catalog: Catalog, registry: SensorRegistry) -> None:
    path = write(
        tmp_path,
        """
        sensors:
          - name: literal
            "on": unit.order.placed
            emit:
              - type: unit.report.requested
                data: {period: week, copies: 3}
            run_job:
              name: pack
              params: {fixed: true, n: 1}
        """,
    )
    [spec] = load_rules(path, catalog, registry)
    ctx = run(spec, placed())
    assert ctx.emitted == [(Report(period="week", copies=3), None)]
    assert ctx.jobs[0].params == {"fixed": True, "n": 1}
    # A second event gives fresh, equal values (the literal is not shared/mutated).
    ctx2 = run(spec, placed("o-2"))
    assert ctx2.emitted == ctx.emitted
    assert ctx2.jobs[0].params is not ctx.jobs[0].params


def test_schedule_emits_its_literal_mapping(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    [_, cron] = load_rules(write(tmp_path, FULL), catalog, registry)
    ctx = run(cron, Envelope(type="herald.cron.tick"))
    assert ctx.emitted == [(Report(period="day", copies=2), None)]


def test_expression_results_are_plain_python(catalog: Catalog) -> None:
    expr = Expression('{"a": [1, 2.5, "x", true, null], "b": {"c": data.amount}}', "test")
    value = expr.evaluate(placed(amount=3.5))
    assert value == {"a": [1, 2.5, "x", True, None], "b": {"c": 3.5}}
    assert type(value["a"][0]) is int
    assert type(value["b"]["c"]) is float
    assert type(value) is dict


# --- no eval, ever ---------------------------------------------------------------------------


@pytest.fixture
def no_python_eval(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    test_thread = threading.get_ident()
    # warm up first: the CEL library's first import builds dataclasses (which exec their
    # generated __init__), a library's start-up, not the evaluation of a rule
    assert Expression("data.amount > 1.0", "warm-up").evaluate(placed(amount=3.5)) is True

    def tripwire(name: str) -> Any:
        real = getattr(builtins, name)

        def _called(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != test_thread:  # a thread left by an earlier test (typing
                return real(*args, **kwargs)  # resolving string annotations), not the rule
            calls.append(name)
            raise AssertionError(f"builtins.{name} was called")

        return _called

    monkeypatch.setattr(builtins, "eval", tripwire("eval"))
    monkeypatch.setattr(builtins, "exec", tripwire("exec"))
    return calls


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('touch {marker}')",
        "open('{marker}', 'w').write('x') == 1",
        "exec('open(\\'{marker}\\', \\'w\\')') == null",
        "data.__class__.__init__.__globals__ == null",
    ],
)
def test_python_code_in_where_never_runs(
    tmp_path: Path,
    catalog: Catalog,
    registry: SensorRegistry,
    no_python_eval: list[str],
    source: str,
) -> None:
    marker = tmp_path / "pwned"
    rule = {"name": "evil", "on": "unit.order.placed", "where": source.format(marker=marker)}
    rule["run_job"] = {"name": "pack"}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump({"sensors": [rule]}))
    try:
        [spec] = load_rules(path, catalog, registry)
    except ConfigurationError as exc:  # rejected at compile time: fine
        assert "evil" in exc.message
    else:
        assert spec.where is not None
        with pytest.raises(ValueError, match="evil"):
            spec.where(placed())
    assert not marker.exists()
    assert no_python_eval == []


# --- configuration errors ------------------------------------------------------------------


def load_error(tmp_path: Path, text: str, catalog: Catalog, registry: SensorRegistry) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigurationError) as info:
        load_rules(path, catalog, registry)
    return info.value.message


def test_invalid_yaml(tmp_path: Path, catalog: Catalog, registry: SensorRegistry) -> None:
    msg = load_error(tmp_path, "sensors:\n  - name: [unclosed\n", catalog, registry)
    assert "rules.yaml" in msg
    assert "invalid YAML" in msg
    assert "line" in msg


def test_missing_file(tmp_path: Path, catalog: Catalog, registry: SensorRegistry) -> None:
    with pytest.raises(ConfigurationError, match="rule file not found") as info:
        load_rules(tmp_path / "absent.yaml", catalog, registry)
    assert "absent.yaml" in info.value.message


@pytest.mark.parametrize(
    ("text", "loc"),
    [
        ("bogus: 1\n", "bogus"),
        (
            'sensors:\n  - name: r\n    "on": unit.order.placed\n    run_job: {name: p}\n    filter: x\n',
            "sensors.0.filter",
        ),
        (
            'sensors:\n  - name: r\n    "on": unit.order.placed\n    emit:\n      - {type: unit.order.shipped, payload: {}}\n',
            "sensors.0.emit.0.payload",
        ),
        (
            'schedules:\n  - name: s\n    cron: "* * * * *"\n    tz: UTC\n    run_job: {name: p}\n',
            "schedules.0.tz",
        ),
    ],
)
def test_unknown_keys(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry, text: str, loc: str
) -> None:
    msg = load_error(tmp_path, text, catalog, registry)
    assert "rules.yaml" in msg
    assert loc in msg
    assert "Extra inputs are not permitted" in msg


def test_missing_required_key(tmp_path: Path, catalog: Catalog, registry: SensorRegistry) -> None:
    msg = load_error(tmp_path, "sensors:\n  - name: r\n    run_job: {name: p}\n", catalog, registry)
    assert "sensors.0.on" in msg
    assert "required" in msg


@pytest.mark.parametrize(
    ("field", "body"),
    [
        ("where", 'where: "data.amount >"\nrun_job: {name: p}'),
        ("emit[0].data", "emit:\n  - type: unit.order.shipped\n    data: '{\"order_id\": '"),
        ("emit[0].subject", "emit:\n  - type: unit.order.shipped\n    subject: '\"a\" +'"),
        ("run_job.params", "run_job:\n  name: p\n  params: '{1: }'"),
    ],
)
def test_invalid_cel_names_file_rule_and_field(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry, field: str, body: str
) -> None:
    text = (
        "sensors:\n"
        "  - name: ok\n"
        '    "on": unit.order.placed\n'
        "    run_job: {name: p}\n"
        "  - name: broken-rule\n"
        '    "on": unit.order.placed\n' + textwrap.indent(body, "    ") + "\n"
    )
    msg = load_error(tmp_path, text, catalog, registry)
    assert "rules.yaml" in msg
    assert "sensors[1] (broken-rule)" in msg
    assert f"{field}: invalid CEL expression" in msg


def test_a_bad_rule_registers_nothing_from_its_file(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    """A file is compiled as a whole: an error in its last rule leaves the registry untouched."""
    text = (
        "sensors:\n"
        "  - name: good\n"
        '    "on": unit.order.placed\n'
        "    run_job: {name: p}\n"
        "schedules:\n"
        "  - name: bad-tick\n"
        '    cron: "99 * * * *"\n'
        "    run_job: {name: p}\n"
    )
    msg = load_error(tmp_path, text, catalog, registry)
    assert "bad-tick" in msg
    assert registry.all() == []


def test_rule_without_emit_or_run_job(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry
) -> None:
    msg = load_error(
        tmp_path,
        'sensors:\n  - name: idle\n    "on": unit.order.placed\n    where: "true"\n',
        catalog,
        registry,
    )
    assert "rules.yaml" in msg
    assert "idle" in msg
    assert "emit:" in msg and "run_job:" in msg


@pytest.mark.parametrize("cron", ["61 * * * *", "not a cron", "* * *", ""])
def test_invalid_cron_expression(
    tmp_path: Path, catalog: Catalog, registry: SensorRegistry, cron: str
) -> None:
    msg = load_error(
        tmp_path,
        f'schedules:\n  - name: tick\n    cron: "{cron}"\n    run_job: {{name: p}}\n',
        catalog,
        registry,
    )
    assert "rules.yaml" in msg
    assert "schedules[0] (tick)" in msg
    assert "invalid cron expression" in msg
    assert repr(cron) in msg


def test_unknown_timezone(tmp_path: Path, catalog: Catalog, registry: SensorRegistry) -> None:
    msg = load_error(
        tmp_path,
        'schedules:\n  - name: tick\n    cron: "0 * * * *"\n    timezone: Mars/Olympus\n'
        "    run_job: {name: p}\n",
        catalog,
        registry,
    )
    assert "rules.yaml" in msg
    assert "tick" in msg
    assert "unknown time zone 'Mars/Olympus'" in msg
