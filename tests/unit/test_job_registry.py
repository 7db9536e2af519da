"""``@herald.job``: the signature is the parameter schema; requests are validated up front."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

import herald
from herald.errors import ConfigurationError, JobError
from herald.jobs import JobDefinition, JobRegistry, default_jobs


@pytest.fixture
def registry() -> JobRegistry:
    return JobRegistry()


@pytest.fixture
def train(registry: JobRegistry) -> JobDefinition:
    @herald.job(registry=registry, executor="inline", max_attempts=2, timeout_s=30.0)
    def train(
        dataset: str,
        epochs: int = 1,
        lr: float = 0.001,
        method: Literal["lora", "full"] = "lora",
        tags: list[str] | None = None,
        ctx: herald.JobContext | None = None,
    ) -> dict[str, Any]:
        """Fine-tune a model."""
        return {}

    return registry.get("train")


def test_job_is_registered_with_its_options(registry: JobRegistry, train: JobDefinition) -> None:
    assert "train" in registry
    assert registry.all() == [train]
    assert train.executor == "inline"
    assert train.max_attempts == 2
    assert train.timeout_s == 30.0
    assert train.description == "Fine-tune a model."
    assert train.origin.endswith(":train.<locals>.train")
    assert train.fn.__herald_job__ is train  # type: ignore[attr-defined]
    assert "train" not in default_jobs


def test_schema_comes_from_the_signature(train: JobDefinition) -> None:
    schema = train.schema()
    assert schema["type"] == "object"
    assert schema["required"] == ["dataset"]
    props = schema["properties"]
    assert set(props) == {"dataset", "epochs", "lr", "method", "tags"}
    assert props["dataset"]["type"] == "string"
    assert props["epochs"] == {"default": 1, "title": "Epochs", "type": "integer"}
    assert props["lr"]["type"] == "number"
    assert props["lr"]["default"] == 0.001
    assert props["method"]["enum"] == ["lora", "full"]
    assert schema["additionalProperties"] is False
    assert train.describe()["parameters"] == schema


def test_ctx_parameter_is_excluded(train: JobDefinition, registry: JobRegistry) -> None:
    assert train.ctx_param == "ctx"
    assert "ctx" not in train.schema()["properties"]

    @herald.job(registry=registry)
    def by_name(context, n: int) -> None:  # type: ignore[no-untyped-def]
        return None

    @herald.job(registry=registry)
    def by_type(n: int, runtime: herald.JobContext) -> None:
        return None

    @herald.job(registry=registry)
    def without(n: int) -> None:
        return None

    assert registry.get("by_name").ctx_param == "context"
    assert registry.get("by_type").ctx_param == "runtime"
    assert registry.get("without").ctx_param is None
    for name in ("by_name", "by_type"):
        assert list(registry.get(name).schema()["properties"]) == ["n"]


def test_validate_coerces_and_fills_defaults(train: JobDefinition) -> None:
    assert train.validate({"dataset": "s3://b/d.jsonl", "epochs": "3", "tags": ["a"]}) == {
        "dataset": "s3://b/d.jsonl",
        "epochs": 3,
        "lr": 0.001,
        "method": "lora",
        "tags": ["a"],
    }


@pytest.mark.parametrize(
    ("params", "field", "kind"),
    [
        ({}, "dataset", "missing"),
        ({"dataset": "d", "epochs": "many"}, "epochs", "int_parsing"),
        ({"dataset": "d", "method": "qlora"}, "method", "literal_error"),
        ({"dataset": "d", "tags": "not-a-list"}, "tags", "list_type"),
    ],
)
def test_validate_rejects_with_the_field(
    train: JobDefinition, params: dict[str, Any], field: str, kind: str
) -> None:
    with pytest.raises(JobError) as info:
        train.validate(params)
    err = info.value
    assert err.status == 422
    assert err.code == "job_error"
    assert "'train'" in err.message
    assert f"{field}: " in err.message
    assert err.details[0]["loc"][0] == field
    assert err.details[0]["type"] == kind


def test_every_error_is_listed(train: JobDefinition) -> None:
    with pytest.raises(JobError) as info:
        train.validate({"epochs": "x", "lr": "y"})
    assert sorted(d["loc"][0] for d in info.value.details) == ["dataset", "epochs", "lr"]


@pytest.mark.parametrize("extra", ["extra", "ctx"])
def test_extra_params_are_rejected(train: JobDefinition, extra: str) -> None:
    with pytest.raises(JobError) as info:
        train.validate({"dataset": "d", extra: 1})
    assert info.value.details == [
        {"loc": [extra], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert f"{extra}: Extra inputs are not permitted" in info.value.message


def test_untyped_parameters_accept_anything(registry: JobRegistry) -> None:
    @herald.job(registry=registry, name="loose")
    def loose(a, b=2):  # type: ignore[no-untyped-def]
        return None

    d = registry.get("loose")
    assert d.validate({"a": {"any": ["thing"]}}) == {"a": {"any": ["thing"]}, "b": 2}
    with pytest.raises(JobError, match="a: Field required"):
        d.validate({"b": 3})


@pytest.mark.parametrize("kind", ["args", "kwargs"])
def test_star_args_are_rejected(registry: JobRegistry, kind: str) -> None:
    with pytest.raises(ConfigurationError, match=r"\*args/\*\*kwargs") as info:
        if kind == "args":

            @herald.job(registry=registry)
            def star(dataset: str, *args: Any) -> None:
                return None

        else:

            @herald.job(registry=registry)
            def star(dataset: str, **kwargs: Any) -> None:
                return None

    assert "'star'" in info.value.message
    assert "star" not in registry


def test_custom_names_and_lookup_errors(registry: JobRegistry) -> None:
    @herald.job("eval.run-suite", registry=registry)
    def run_suite(suite: str) -> None:
        return None

    assert registry.get("eval.run-suite").validate({"suite": "mmlu"}) == {"suite": "mmlu"}
    with pytest.raises(JobError) as info:
        registry.get("nope")
    assert "unknown job 'nope'" in info.value.message
    assert "eval.run-suite" in info.value.message  # lists the known jobs
    registry.remove("eval.run-suite")
    assert "eval.run-suite" not in registry


def test_two_jobs_with_one_name_are_refused(registry: JobRegistry) -> None:
    @herald.job("dup", registry=registry)
    def first() -> None:
        return None

    with pytest.raises(ConfigurationError, match="dup"):

        @herald.job("dup", registry=registry)
        def second() -> None:
            return None

    assert registry.get("dup").fn is first


def test_parameter_names_that_shadow_basemodel_attributes(registry: JobRegistry) -> None:
    """``schema``/``copy``/``json`` are ordinary job parameter names (e.g. a JSON schema for
    structured output); declaring them must not warn (warnings are errors here) or break."""

    @herald.job(registry=registry)
    def structured(schema: dict[str, Any], copy: bool = False, json: str = "") -> None:
        return None

    d = registry.get("structured")
    assert d.validate({"schema": {"type": "object"}, "copy": True}) == {
        "schema": {"type": "object"},
        "copy": True,
        "json": "",
    }
    assert set(d.schema()["properties"]) == {"schema", "copy", "json"}


def test_annotated_constraints_are_kept(registry: JobRegistry) -> None:
    """``Annotated[int, Field(ge=1)]`` limits are part of the parameter schema."""

    @herald.job(registry=registry)
    def bounded(steps: Annotated[int, Field(ge=1, le=10)] = 2) -> None:
        return None

    d = registry.get("bounded")
    assert d.schema()["properties"]["steps"]["minimum"] == 1
    with pytest.raises(JobError, match="steps"):
        d.validate({"steps": 0})
