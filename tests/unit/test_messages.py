"""Typed messages, the CloudEvents envelope and the catalog."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from herald.errors import MessageError, MessageValidationError, PayloadTooLarge, UnknownMessageType
from herald.messages import MAX_PAYLOAD_BYTES, Catalog, Envelope, Message, default_catalog


class Widget(Message, type="unit.widget.made", register=False):
    """A widget was made."""

    name: str
    count: int
    weight: float = 1.0


class Note(Message, type="unit.note.written", version=3, register=False):
    text: str


class Point(BaseModel):
    x: int
    y: int


class Shape(Message, type="unit.shape.drawn", register=False):
    """A shape with nested points."""

    points: list[Point]


@pytest.fixture
def catalog() -> Catalog:
    c = Catalog()
    for cls in (Widget, Note, Shape):
        c.register(cls)
    return c


def _exact(size: int) -> dict[str, Any]:
    """A ``Note`` payload whose compact JSON encoding is exactly ``size`` bytes."""
    overhead = len(json.dumps({"text": ""}, separators=(",", ":")).encode())
    return {"text": "a" * (size - overhead)}


# --- declaring message types --------------------------------------------------------------


def test_subclass_with_type_registers_in_default_catalog() -> None:
    class Registered(Message, type="unit.thing.registered"):
        """Docstring becomes the description."""

        value: int

    assert "unit.thing.registered" in default_catalog
    assert default_catalog.get("unit.thing.registered") is Registered
    assert Registered.message_type == "unit.thing.registered"
    assert Registered.message_version == 1
    assert Registered.message_description == "Docstring becomes the description."


def test_register_false_and_untyped_subclasses_stay_out_of_the_catalog() -> None:
    before = default_catalog.names()

    class Private(Message, type="unit.thing.private", register=False):
        value: int

    class Base(Message):
        value: int

    class Child(Widget):  # inherits Widget's type; must not re-register anything
        extra: str = ""

    assert "unit.thing.private" not in default_catalog
    assert default_catalog.names() == before
    assert Base.message_type == ""
    assert Child.message_type == "unit.widget.made"


@pytest.mark.parametrize(
    "bad",
    [
        "order",
        "Acme.order",
        "acme.Order",
        "acme..order",
        "acme.order.",
        ".acme.order",
        "acme order.x",
        "acme.ord€r",
        "",
    ],
)
def test_invalid_type_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="dotted lower-case"):

        class Bad(Message, type=bad):
            value: int

    assert bad not in default_catalog


def test_version_must_be_positive() -> None:
    with pytest.raises(ValueError, match="version"):

        class Bad(Message, type="unit.bad.version", version=0):
            value: int


def test_catalog_register_needs_a_type() -> None:
    class Untyped(Message):
        value: int

    with pytest.raises(ValueError, match="type="):
        Catalog().register(Untyped)


def test_messages_are_frozen_and_forbid_extra_fields() -> None:
    w = Widget(name="w", count=1)
    with pytest.raises(ValidationError):
        w.count = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        Widget(name="w", count=1, colour="red")  # type: ignore[call-arg]
    assert w.payload() == {"name": "w", "count": 1, "weight": 1.0}


# --- the envelope ---------------------------------------------------------------------------


def test_envelope_defaults() -> None:
    before = datetime.now(UTC)
    env = Envelope(type="unit.widget.made")
    after = datetime.now(UTC)

    parsed = uuid.UUID(env.id)
    assert str(parsed) == env.id
    assert parsed.version == 7
    assert env.correlationid == env.id
    assert env.causationid is None
    assert env.specversion == "1.0"
    assert env.source == "herald"
    assert env.datacontenttype == "application/json"
    assert env.data == {}
    assert env.seq is None
    assert env.time.tzinfo is not None
    assert env.time.utcoffset() is not None
    assert before <= env.time <= after


def test_envelope_ids_are_unique_and_explicit_correlation_is_kept() -> None:
    ids = {Envelope(type="unit.widget.made").id for _ in range(200)}
    assert len(ids) == 200
    env = Envelope(type="unit.widget.made", correlationid="flow-1", causationid="cause-1")
    assert env.correlationid == "flow-1"
    assert env.causationid == "cause-1"


def test_envelope_rejects_other_spec_versions_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Envelope(type="unit.widget.made", specversion="0.3")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Envelope(type="unit.widget.made", bogus=1)  # type: ignore[call-arg]


def test_to_cloudevent_is_structured_json() -> None:
    env = Envelope(type="unit.widget.made", data={"name": "w"})
    ce = env.to_cloudevent()
    assert ce["specversion"] == "1.0"
    assert ce["type"] == "unit.widget.made"
    assert ce["id"] == env.id
    assert "subject" not in ce  # None fields are left out
    assert isinstance(ce["time"], str)
    assert datetime.fromisoformat(ce["time"]).tzinfo is not None
    json.dumps(ce)  # JSON-serialisable as is
    assert env.with_seq(7).seq == 7
    assert env.seq is None


def test_catalog_envelope_wraps_a_message(catalog: Catalog) -> None:
    env = catalog.envelope(Note(text="hi"), subject="notes/1", causationid="c-1")
    assert env.type == "unit.note.written"
    assert env.schemaversion == 3
    assert env.dataschema == "/v1/catalog/unit.note.written"
    assert env.subject == "notes/1"
    assert env.data == {"text": "hi"}
    assert env.correlationid == env.id
    assert env.causationid == "c-1"
    assert catalog.envelope(Note(text="x"), id="fixed-id").id == "fixed-id"


# --- validation -----------------------------------------------------------------------------


def test_validate_returns_the_typed_message(catalog: Catalog) -> None:
    msg = catalog.validate("unit.widget.made", {"name": "w", "count": "3"})
    assert isinstance(msg, Widget)
    assert msg.count == 3
    assert msg.weight == 1.0


def test_validate_unknown_type(catalog: Catalog) -> None:
    with pytest.raises(UnknownMessageType) as info:
        catalog.validate("unit.nope.never", {"a": 1})
    err = info.value
    assert isinstance(err, MessageError)
    assert err.status == 422
    assert err.code == "unknown_message_type"
    assert "unit.nope.never" in err.message
    assert err.details == {"type": "unit.nope.never"}


def test_validate_wrong_field_types_lists_every_error(catalog: Catalog) -> None:
    with pytest.raises(MessageValidationError) as info:
        catalog.validate("unit.widget.made", {"name": 5, "count": "many"})
    err = info.value
    assert err.status == 422
    assert err.code == "invalid_payload"
    locs = sorted(tuple(d["loc"]) for d in err.details)
    assert locs == [("count",), ("name",)]
    for d in err.details:
        assert isinstance(d["msg"], str) and d["msg"]
        assert set(d) >= {"loc", "msg", "type"}
    assert "unit.widget.made" in err.message
    assert "and 1 more" in err.message


def test_validate_missing_and_extra_fields(catalog: Catalog) -> None:
    with pytest.raises(MessageValidationError) as info:
        catalog.validate("unit.widget.made", {"name": "w", "colour": "red"})
    by_type = {d["type"]: d["loc"] for d in info.value.details}
    assert by_type["missing"] == ["count"]
    assert by_type["extra_forbidden"] == ["colour"]


def test_validate_nested_error_location(catalog: Catalog) -> None:
    with pytest.raises(MessageValidationError) as info:
        catalog.validate("unit.shape.drawn", {"points": [{"x": 1, "y": 2}, {"x": "?", "y": 2}]})
    assert info.value.details[0]["loc"] == ["points", 1, "x"]
    assert "points.1.x" in info.value.message


@pytest.mark.parametrize("data", [[1, 2], "text", 3, None])
def test_validate_non_dict_data(catalog: Catalog, data: Any) -> None:
    with pytest.raises(MessageValidationError) as info:
        catalog.validate("unit.widget.made", data)
    assert "JSON object" in info.value.message
    assert info.value.details[0]["loc"] == ["data"]


# --- the 64 KiB limit -----------------------------------------------------------------------


def test_payload_limit_is_64_kib() -> None:
    assert MAX_PAYLOAD_BYTES == 64 * 1024


def test_payload_of_exactly_64_kib_is_accepted(catalog: Catalog) -> None:
    data = _exact(MAX_PAYLOAD_BYTES)
    assert len(json.dumps(data, separators=(",", ":")).encode()) == MAX_PAYLOAD_BYTES
    msg = catalog.validate("unit.note.written", data)
    env = catalog.envelope(msg)
    assert len(env.data["text"]) == len(data["text"])


def test_payload_one_byte_over_is_rejected_with_413(catalog: Catalog) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        catalog.validate("unit.note.written", _exact(MAX_PAYLOAD_BYTES + 1))
    err = info.value
    assert err.status == 413
    assert err.code == "payload_too_large"
    assert str(MAX_PAYLOAD_BYTES + 1) in err.message
    assert "64 KiB" in err.message


def test_payload_size_counts_utf8_bytes(catalog: Catalog) -> None:
    # 'é' is one character but two bytes: 40,000 of them exceed 64 KiB.
    with pytest.raises(PayloadTooLarge):
        catalog.validate("unit.note.written", {"text": "é" * 40_000})


def test_envelope_of_oversized_message_is_refused(catalog: Catalog) -> None:
    big = Note(text="a" * MAX_PAYLOAD_BYTES)
    with pytest.raises(PayloadTooLarge):
        catalog.envelope(big)


# --- describe / JSON Schema / AsyncAPI --------------------------------------------------------


def test_describe_gives_json_schema(catalog: Catalog) -> None:
    d = catalog.describe("unit.widget.made")
    assert d["type"] == "unit.widget.made"
    assert d["version"] == 1
    assert d["description"] == "A widget was made."
    assert d["python"].endswith("Widget")
    schema = d["schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "count"]
    assert schema["properties"]["count"]["type"] == "integer"
    assert schema["properties"]["weight"]["default"] == 1.0
    assert schema["additionalProperties"] is False
    with pytest.raises(UnknownMessageType):
        catalog.describe("unit.nope.never")


def test_to_json_lists_every_type_sorted(catalog: Catalog) -> None:
    doc = catalog.to_json()
    names = [t["type"] for t in doc["types"]]
    assert names == sorted(names) == catalog.names()
    assert names == ["unit.note.written", "unit.shape.drawn", "unit.widget.made"]
    json.dumps(doc)
    assert doc["types"][0]["version"] == 3


def test_unregister_removes_a_type(catalog: Catalog) -> None:
    catalog.unregister("unit.note.written")
    assert "unit.note.written" not in catalog
    with pytest.raises(UnknownMessageType):
        catalog.get("unit.note.written")


def test_asyncapi_document(catalog: Catalog) -> None:
    doc = catalog.asyncapi(title="Test", version="9")
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Test"
    assert doc["info"]["version"] == "9"
    json.dumps(doc)

    messages = doc["components"]["messages"]
    assert (
        set(doc["channels"])
        == set(messages)
        == {
            "unit_widget_made",
            "unit_note_written",
            "unit_shape_drawn",
        }
    )
    for name in catalog.names():
        key = name.replace(".", "_")
        channel = doc["channels"][key]
        assert channel["address"] == name
        assert channel["messages"][key] == {"$ref": f"#/components/messages/{key}"}
        assert messages[key]["name"] == name
        assert messages[key]["contentType"] == "application/cloudevents+json"
        op = doc["operations"][f"publish_{key}"]
        assert op["action"] == "send"
        assert op["channel"] == {"$ref": f"#/channels/{key}"}

    widget = messages["unit_widget_made"]
    assert widget["payload"] == Widget.model_json_schema()
    assert widget["summary"] == "A widget was made."
    assert messages["unit_note_written"]["x-herald-version"] == 3


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_refs_resolve_within_the_document(catalog: Catalog) -> None:
    """Every local ``$ref`` (including those of nested models' schemas) must point somewhere.

    A payload schema embedded under ``components.messages.X.payload`` that keeps pydantic's
    ``#/$defs/Point`` references would be resolved against the document root by AsyncAPI tools.
    """
    doc = catalog.asyncapi()
    refs = _refs(doc)
    assert refs
    for ref in refs:
        try:
            _resolve(doc, ref)
        except (KeyError, IndexError, TypeError):
            pytest.fail(f"AsyncAPI $ref {ref!r} does not resolve within the document")
