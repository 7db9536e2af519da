"""Registry behaviour on SQLite (and in-memory); PostgreSQL runs in tests/integration."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from herald.errors import Conflict, NotFound
from herald.registry import InvalidRegistryRequest, Registry, parse_model_uri
from herald.registry.models import ModelRef, parse_dataset_uri


@pytest.fixture(params=["sqlite", "memory"])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    url = f"sqlite:///{tmp_path / 'h.db'}" if request.param == "sqlite" else "memory://"
    r = Registry(url)
    yield r
    r.close()


def register(reg: Registry, name: str = "demo", **kw: object) -> int:
    mv, created = reg.register_model_version(
        name,
        artifact_uri=kw.pop("artifact_uri", "file:///a/x"),
        kind="lora",
        **kw,  # type: ignore[arg-type]
    )
    assert created
    return mv.version


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/demo@champion", ModelRef("demo", None, "champion")),
        ("models:/demo/3", ModelRef("demo", 3, None)),
        ("models:/demo", ModelRef("demo", None, None)),
        ("models:///demo", ModelRef("demo", None, None)),
        ("demo", ModelRef("demo", None, None)),
        ("demo@c-2", ModelRef("demo", None, "c-2")),
        ("demo/12", ModelRef("demo", 12, None)),
        ("models:/my%2Dmodel/2", ModelRef("my-model", 2, None)),
    ],
)
def test_parse_model_uri(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref


@pytest.mark.parametrize(
    "bad",
    ["", "models:/", "models:/a/b", "models:/a/0", "hf:/x", "a@1x", "a/1@b", "../x", "%2e%2e/x"],
)
def test_parse_model_uri_rejects(bad: str) -> None:
    with pytest.raises(InvalidRegistryRequest):
        parse_model_uri(bad)


def test_parse_dataset_uri() -> None:
    assert parse_dataset_uri("datasets:/d/3") == ("d", 3)
    assert parse_dataset_uri("d") == ("d", None)
    assert parse_dataset_uri("d", 2) == ("d", 2)
    with pytest.raises(InvalidRegistryRequest, match="names version 3"):
        parse_dataset_uri("datasets:/d/3", 2)


def test_versions_increment_and_resolve(reg: Registry) -> None:
    assert register(reg) == 1
    assert register(reg) == 2
    mv = reg.resolve("models:/demo")
    assert (mv.version, mv.uri, mv.status) == (2, "models:/demo/2", "ready")
    assert reg.resolve("demo/1").version == 1
    assert [v.version for v in reg.list_versions("demo")] == [2, 1]
    [summary] = reg.list_models()
    assert summary["name"] == "demo"
    assert summary["latest_version"] == 2
    assert summary["versions"] == 2


def test_idempotency_key(reg: Registry) -> None:
    a, created_a = reg.register_model_version(
        "demo", artifact_uri="file:///x", kind="full", idempotency_key="evt-1"
    )
    b, created_b = reg.register_model_version(
        "demo", artifact_uri="file:///y", kind="full", idempotency_key="evt-1"
    )
    assert created_a and not created_b
    assert b.version == a.version == 1
    assert b.artifact_uri == "file:///x"


def test_aliases_and_history(reg: Registry) -> None:
    register(reg)
    register(reg)
    assert reg.set_alias("demo", "champion", 1, reason="first", actor="alice") is None
    assert reg.resolve("models:/demo@champion").version == 1
    assert reg.set_alias("demo", "champion", 2, reason="better") == 1
    mv = reg.resolve("demo@champion")
    assert mv.version == 2
    assert mv.aliases == ["champion"]
    # the same request retried (same idempotency key) is not applied twice
    assert reg.set_alias("demo", "challenger", 1, idempotency_key="e9") is None
    assert reg.set_alias("demo", "challenger", 1, idempotency_key="e9") is None
    history = reg.alias_history("demo", "champion")
    assert [(h["version"], h["previous_version"], h["reason"]) for h in history] == [
        (1, None, "first"),
        (2, 1, "better"),
    ]
    assert history[0]["actor"] == "alice"
    assert len(reg.alias_history("demo")) == 3


def test_resolve_errors_list_what_exists(reg: Registry) -> None:
    with pytest.raises(NotFound, match="registered models: none"):
        reg.resolve("ghost")
    register(reg)
    with pytest.raises(NotFound, match="registered models: demo"):
        reg.resolve("ghost@champion")
    reg.set_alias("demo", "champion", 1)
    with pytest.raises(NotFound, match=r"no alias 'prod' \(aliases: champion→1\)"):
        reg.resolve("models:/demo@prod")
    with pytest.raises(NotFound, match=r"no version 7 \(versions: 1\)"):
        reg.resolve("models:/demo/7")


def test_archive(reg: Registry) -> None:
    register(reg)
    register(reg)
    reg.set_alias("demo", "champion", 2)
    reg.set_alias("demo", "staging", 2)
    assert reg.archive_version("demo", 2, reason="regression") == ["champion", "staging"]
    assert reg.archive_version("demo", 2) == ["champion", "staging"]  # a repeat reports the same
    mv = reg.get_version("demo", 2)
    assert mv.status == "archived"
    assert mv.aliases == []
    assert mv.archived_at is not None
    assert reg.resolve("models:/demo").version == 1  # latest non-archived
    assert reg.resolve("models:/demo/2").status == "archived"  # still resolvable by number
    with pytest.raises(NotFound, match="no alias 'champion'"):
        reg.resolve("demo@champion")
    with pytest.raises(Conflict, match="archived"):
        reg.set_alias("demo", "champion", 2)
    reg.archive_version("demo", 1)
    with pytest.raises(NotFound, match="every version"):
        reg.resolve("demo")
    assert [h["action"] for h in reg.alias_history("demo")][-2:] == ["archive", "archive"]


def test_invalid_inputs(reg: Registry) -> None:
    with pytest.raises(InvalidRegistryRequest, match="unknown model kind"):
        reg.register_model_version("demo", artifact_uri="x", kind="onnx")
    with pytest.raises(InvalidRegistryRequest, match="invalid model name"):
        reg.register_model_version("../etc", artifact_uri="x", kind="full")
    with pytest.raises(InvalidRegistryRequest, match="finite"):
        reg.register_model_version(
            "demo", artifact_uri="x", kind="full", metrics={"loss": float("nan")}
        )
    register(reg)
    with pytest.raises(InvalidRegistryRequest, match="invalid alias"):
        reg.set_alias("demo", "1st", 1)
    with pytest.raises(NotFound, match="no version 5"):
        reg.set_alias("demo", "champion", 5)


def test_datasets_content_addressed(reg: Registry) -> None:
    common = {
        "artifact_uri": "file:///d/1",
        "format": "chat",
        "rows": 10,
        "splits": {"train": 9, "validation": 1},
        "stats": {"tokens": 100},
        "pii": {"email": 0},
        "source": "/data/chat.jsonl",
    }
    d1, c1 = reg.add_dataset_version("chat", fingerprint="f1", **common)  # type: ignore[arg-type]
    d1b, c1b = reg.add_dataset_version("chat", fingerprint="f1", **common)  # type: ignore[arg-type]
    d2, c2 = reg.add_dataset_version("chat", fingerprint="f2", **common)  # type: ignore[arg-type]
    assert (c1, c1b, c2) == (True, False, True)
    assert d1.version == d1b.version == 1 and d2.version == 2
    assert d1.uri == "datasets:/chat/1"
    assert reg.get_dataset("chat").version == 2
    assert reg.get_dataset("datasets:/chat/1").splits == {"train": 9, "validation": 1}
    assert reg.get_dataset("chat", 1).fingerprint == "f1"
    assert [d.version for d in reg.list_datasets()] == [2]
    assert [d.version for d in reg.list_datasets("chat")] == [2, 1]
    with pytest.raises(NotFound, match=r"no version 9 \(versions: 1, 2\)"):
        reg.get_dataset("chat", 9)
    with pytest.raises(NotFound, match="registered: chat"):
        reg.get_dataset("other")


def test_metrics_and_model_card(reg: Registry) -> None:
    reg.add_dataset_version(
        "chat",
        fingerprint="abc",
        artifact_uri="file:///d",
        format="chat",
        rows=3,
        splits={"train": 3},
        stats={},
        pii={},
        source="x.jsonl",
    )
    reg.register_model_version(
        "demo",
        artifact_uri="file:///m",
        kind="lora",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        dataset="datasets:/chat/1",
        config={"lora_r": 8},
        metrics={"train_loss": 1.5},
        chat_template="{{ messages }}",
        tags={"team": "nlp"},
        lineage={"finetune_event_id": "e1", "correlationid": "c1"},
    )
    reg.add_version_metrics("demo", 1, {"exact_match": 0.5}, source="eval:run-1")
    reg.add_version_metrics("demo", 1, {"exact_match": 0.75}, source="eval:run-1")
    got = reg.get_version("demo", 1)
    assert got.metrics == {"train_loss": 1.5, "exact_match": 0.75}
    assert [e["source"] for e in got.lineage["evaluations"]] == ["eval:run-1"]
    card = reg.model_card("demo", 1)
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert front["datasets"] == ["datasets:/chat/1"]
    assert front["library_name"] == "peft"
    assert "herald" in front["tags"] and "team:nlp" in front["tags"]
    metrics = front["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics} == {"exact_match": 0.75, "train_loss": 1.5}
    assert "## Training data" in card and "finetune_event_id" in card
    assert '"lora_r": 8' in card


def test_runs(reg: Registry) -> None:
    run = reg.create_run("r1", name="sft", job_id="j1", params={"lr": 1e-4, "lora": {"r": 8}})
    assert run.status == "running"
    assert reg.create_run("r1", name="sft").params == run.params  # retried job: same run
    reg.log_metrics("r1", 1, {"loss": 2.0, "lr": 1e-4}, timestamp=1000.0)
    reg.log_metrics("r1", 2, {"loss": 1.5})
    reg.log_metrics("r1", 2, {"loss": 1.25})  # same step again overwrites
    reg.log_artifact("r1", "adapter", "file:///a")
    reg.finish_run("r1", "finished")
    register(reg, run_id="r1")
    got = reg.get_run("r1")
    assert got.status == "finished" and got.finished_at is not None
    assert got.metrics == {"loss": 1.25, "lr": 1e-4}
    assert got.artifacts == {"adapter": "file:///a"}
    assert got.models == ["models:/demo/1"]
    series = reg.run_metrics("r1", ["loss"])
    assert series == {
        "loss": [
            {"step": 1, "value": 2.0, "timestamp": 1000.0},
            {"step": 2, "value": 1.25, "timestamp": series["loss"][1]["timestamp"]},
        ]
    }
    reg.create_run("r2", name="sft", params={"lr": 2e-4, "lora": {"r": 8}})
    reg.log_metrics("r2", 1, {"loss": 1.0})
    cmp = reg.compare_runs(["r1", "r2"])
    assert cmp["params"]["differ"] == {"lr": {"r1": 1e-4, "r2": 2e-4}}
    assert cmp["params"]["same"] == {"lora.r": 8}
    assert cmp["metrics"]["loss"]["r1"] == {"last": 1.25, "min": 1.25, "max": 2.0, "last_step": 2}
    assert cmp["metrics"]["loss"]["r2"]["last"] == 1.0
    assert [r.id for r in reg.list_runs(status="running")] == ["r2"]
    assert {r.id for r in reg.list_runs()} == {"r1", "r2"}
    with pytest.raises(InvalidRegistryRequest, match="unknown run filter"):
        reg.list_runs(colour="red")
    with pytest.raises(InvalidRegistryRequest, match="run status"):
        reg.finish_run("r1", "done")
    with pytest.raises(NotFound, match="no run 'r9'"):
        reg.log_metrics("r9", 1, {"loss": 1.0})


def test_concurrent_registration_is_serialised(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    regs = [Registry(url) for _ in range(4)]
    versions: list[int] = []
    lock = threading.Lock()

    def work(r: Registry) -> None:
        for _ in range(5):
            mv, _ = r.register_model_version("demo", artifact_uri="x", kind="full")
            with lock:
                versions.append(mv.version)

    threads = [threading.Thread(target=work, args=(r,)) for r in regs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in regs:
        r.close()
    assert sorted(versions) == list(range(1, 21))


def test_models_versions_and_runs_page_by_key(reg: Registry) -> None:
    from herald.bus.base import page_key

    for name in ("m-c", "m-a", "m-e", "m-b", "m-d"):
        register(reg, name)
    names = [m["name"] for m in reg.list_models()]
    assert names == sorted(names)
    pages, after = [], None
    while True:
        got = [m["name"] for m in reg.list_models(limit=2, after=after)]
        if not got:
            break
        pages.append(got)
        after = got[-1]
        register(reg, "m-0")  # sorts before every cursor: never shows up mid-walk
    assert pages == [names[0:2], names[2:4], names[4:]]
    assert reg.list_models(limit=1, after="m-e") == []

    for _ in range(4):
        register(reg, "pv")
    assert [v.version for v in reg.list_versions("pv", limit=3)] == [4, 3, 2]
    assert [v.version for v in reg.list_versions("pv", limit=3, before=2)] == [1]
    assert reg.list_versions("pv", before=1) == []  # past the oldest: empty, not 404
    with pytest.raises(NotFound):
        reg.list_versions("nope", before=3)

    for i in range(7):
        reg.create_run(f"run-{i}", name="sweep")
    newest_first = [r.id for r in reg.list_runs(name="sweep")]
    assert sorted(newest_first) == [f"run-{i}" for i in range(7)]
    keys = [page_key(r.created_at, r.id) for r in reg.list_runs(name="sweep")]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == 7
    walked: list[str] = []
    before = None
    while True:
        rows = reg.list_runs(limit=3, before=before, name="sweep")
        walked += [r.id for r in rows]
        if len(rows) < 3:
            break
        before = page_key(rows[-1].created_at, rows[-1].id)
        reg.create_run(f"late-{len(walked)}", name="sweep")
    assert walked == newest_first
