"""The curated public surface of ``import herald`` and the DESIGN §2 example."""

from __future__ import annotations

import importlib

import pytest

import herald
from herald.errors import ConfigurationError
from herald.messages import default_catalog
from herald.sensors import SensorContext, SensorRegistry, SensorSpec

EXPECTED_ALL = [
    "Client",
    "Envelope",
    "Herald",
    "HeraldError",
    "JobContext",
    "Message",
    "SensorContext",
    "__version__",
    "job",
    "schedule",
    "sensor",
]


def test_all_matches_the_curated_list() -> None:
    assert sorted(herald.__all__) == sorted(EXPECTED_ALL)
    assert len(herald.__all__) == len(set(herald.__all__))


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("herald")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from herald import {name}", namespace)  # the `from herald import X` spelling
    assert namespace[name] is getattr(herald, name)


def test_public_names_are_the_real_objects() -> None:
    from herald.errors import HeraldError
    from herald.jobs.registry import job
    from herald.messages.base import Message
    from herald.messages.envelope import Envelope
    from herald.sensors.base import sensor
    from herald.sensors.cron import schedule

    assert herald.Message is Message
    assert herald.Envelope is Envelope
    assert herald.HeraldError is HeraldError
    assert herald.sensor is sensor
    assert herald.schedule is schedule
    assert herald.job is job
    assert isinstance(herald.__version__, str) and herald.__version__.count(".") == 2


def test_design_example_with_a_fresh_registry() -> None:
    registry = SensorRegistry()

    class OrderPlaced(herald.Message, type="acme.order.placed"):
        order_id: str
        amount: float

    class OrderShipped(herald.Message, type="acme.order.shipped"):
        order_id: str

    @herald.sensor(on=OrderPlaced, where=lambda m: m.amount > 0, registry=registry)
    def ship(msg: OrderPlaced, ctx: herald.SensorContext) -> OrderShipped:
        """Ship every placed order."""
        return OrderShipped(order_id=msg.order_id)

    assert default_catalog.get("acme.order.placed") is OrderPlaced
    assert default_catalog.get("acme.order.shipped") is OrderShipped

    specs = registry.all()
    assert len(specs) == 1
    spec = specs[0]
    assert isinstance(spec, SensorSpec)
    assert spec is ship.__herald_sensor__  # type: ignore[attr-defined]
    assert spec.name.endswith("ship")
    assert spec.types == ("acme.order.placed",)
    assert spec.kind == "python"
    assert spec.start == "latest"
    assert spec.description == "Ship every placed order."
    assert spec.where is not None
    assert spec.where(OrderPlaced(order_id="o-1", amount=10.0)) is True
    assert spec.where(OrderPlaced(order_id="o-2", amount=0.0)) is False

    placed = OrderPlaced(order_id="o-1", amount=10.0)
    env = default_catalog.envelope(placed)
    ctx = SensorContext(event=env, sensor=spec.name)
    out = spec.handler(placed, ctx)
    assert out == OrderShipped(order_id="o-1")
    assert ship is spec.handler  # the decorator returns the function itself


def test_design_example_on_the_default_registry() -> None:
    class OrderPlaced(herald.Message, type="acme.order.placed"):
        order_id: str
        amount: float

    @herald.sensor(on=OrderPlaced, where=lambda m: m.amount > 0)
    def ship(msg: OrderPlaced, ctx: herald.SensorContext) -> None:
        return None

    spec = ship.__herald_sensor__  # type: ignore[attr-defined]
    try:
        assert herald.sensors.default_registry.get(spec.name) is spec
    finally:
        herald.sensors.default_registry.remove(spec.name)
    assert herald.sensors.default_registry.get(spec.name) is None


def test_sensor_accepts_type_names_and_lists() -> None:
    registry = SensorRegistry()

    @herald.sensor(on=["unit.a.happened", "unit.b.happened"], name="both", registry=registry)
    def both(msg: object) -> None:
        return None

    spec = registry.get("both")
    assert spec is not None
    assert spec.types == ("unit.a.happened", "unit.b.happened")
    assert spec.where is None


def test_sensor_context_collects_side_effects() -> None:
    class Ping(herald.Message, type="unit.ping.sent", register=False):
        n: int

    ctx = SensorContext(event=herald.Envelope(type="unit.ping.sent"), sensor="s")
    ctx.emit(Ping(n=1), subject="p/1")
    job_id = ctx.run_job("train", {"epochs": 2}, executor="inline")
    assert ctx.emitted == [(Ping(n=1), "p/1")]
    assert [(j.id, j.name, j.params, j.executor) for j in ctx.jobs] == [
        (job_id, "train", {"epochs": 2}, "inline")
    ]
    with pytest.raises(TypeError, match=r"herald\.Message"):
        ctx.emit({"n": 1})  # type: ignore[arg-type]


def test_sensor_declaration_errors() -> None:
    registry = SensorRegistry()
    with pytest.raises(ConfigurationError, match="at least one"):
        herald.sensor(on=[], registry=registry)
    with pytest.raises(ConfigurationError, match="message classes or type names"):
        herald.sensor(on=[42], registry=registry)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="start="):
        herald.sensor(on="unit.a.b", start="middle", registry=registry)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"\(msg\) or \(msg, ctx\)"):

        @herald.sensor(on="unit.a.b", registry=registry)
        def too_many(msg: object, ctx: object, extra: object) -> None:
            return None

    assert registry.all() == []


def test_two_sensors_with_one_name_are_refused() -> None:
    registry = SensorRegistry()

    @herald.sensor(on="unit.a.b", name="dup", registry=registry)
    def first(msg: object) -> None:
        return None

    with pytest.raises(ConfigurationError, match="dup"):

        @herald.sensor(on="unit.a.b", name="dup", registry=registry)
        def second(msg: object) -> None:
            return None

    spec = registry.get("dup")
    assert spec is not None and spec.handler is first
