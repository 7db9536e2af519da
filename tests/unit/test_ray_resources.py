"""Pure parts of the Ray executor and the sharded evaluation (no cluster needed)."""

from __future__ import annotations

import pytest

from herald.errors import BackendUnavailable, ConfigurationError
from herald.evaluation.sharded import shard_count, split
from herald.jobs.executors.ray import job_environment, parse_memory, resource_request
from herald.jobs.registry import JobRegistry, job
from herald.raycluster import check_reachable, host_port
from herald.settings import RaySettings, Settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (1024, 1024),
        ("512MiB", 512 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("2Gi", 2 * 1024**3),
        ("1.5GB", 1_500_000_000),
        ("100", 100),
    ],
)
def test_parse_memory(value: object, expected: int | None) -> None:
    assert parse_memory(value) == expected


@pytest.mark.parametrize("value", ["lots", "2 parsecs", -1, True])
def test_parse_memory_refuses_nonsense_naming_the_field(value: object) -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        parse_memory(value)


def test_resource_request_layers_defaults_job_and_settings() -> None:
    reg = JobRegistry()

    @job(name="heavy", registry=reg, resources={"cpus": 2, "memory": "1GiB"})
    def heavy() -> None: ...

    d = reg.get("heavy")
    base = RaySettings(num_cpus=1, num_gpus=0)
    assert resource_request("heavy", d, base) == {
        "num_cpus": 2.0,
        "num_gpus": 0.0,
        "memory": 1024**3,
    }
    override = RaySettings(job_resources={"heavy": {"gpus": 1, "memory": None}})
    got = resource_request("heavy", d, override)
    assert got == {"num_cpus": 2.0, "num_gpus": 1.0, "memory": 1024**3}
    assert resource_request("other", None, base) == {"num_cpus": 1.0, "num_gpus": 0.0}


def test_resource_request_refuses_unknown_keys_and_bad_numbers() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown resource.*tpus"):
        resource_request("j", None, RaySettings(job_resources={"j": {"tpus": 4}}))
    with pytest.raises(ConfigurationError, match="cpus must be a number"):
        resource_request("j", None, RaySettings(job_resources={"j": {"cpus": "many"}}))


def test_addresses_and_unreachable_error() -> None:
    assert host_port("auto") is None and host_port("local") is None
    assert host_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_port("ray://head:10001") == ("head", 10001)
    with pytest.raises(ConfigurationError, match="not host:port"):
        host_port("head")
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1 "):
        check_reachable("127.0.0.1:1", 1.0)


def test_job_environment_forwards_herald_vars_but_not_the_admin_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("HERALD_API_KEY", "secret")
    monkeypatch.setenv("HERALD_LOG_LEVEL", "DEBUG")
    s = Settings(home=str(tmp_path))
    env = job_environment(s)
    assert "HERALD_API_KEY" not in env and env["HERALD_LOG_LEVEL"] == "DEBUG"
    assert env["HERALD_HOME"] == str(s.home)
    assert env["HERALD_DATABASE_URL"] == s.resolved_database_url
    assert "HERALD_LOG_LEVEL" not in job_environment(s, forward=False)


def test_herald_executor_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_EXECUTOR", "ray")
    s = Settings()
    assert s.jobs.default_executor == "ray" and s.jobs.ray.enabled
    assert s.jobs.executor_for(None) == "ray"
    assert s.jobs.executor_for("local") == "ray"  # heavy work goes to the cluster
    assert s.jobs.executor_for("inline") == "inline"
    monkeypatch.setenv("HERALD_EXECUTOR", "local")
    s = Settings()
    assert s.jobs.executor_for("local") == "local" and not s.jobs.ray.enabled


def test_shards() -> None:
    assert shard_count({}) == 1 and shard_count({"shards": 4}) == 4
    with pytest.raises(ConfigurationError, match="shards"):
        shard_count({"shards": 0})
    with pytest.raises(ConfigurationError, match="whole number"):
        shard_count({"shards": "x"})
    parts = split(list(range(10)), 3)
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert split([1, 2], 5) == [[1], [2]]
    assert [x for part in split(list(range(23)), 3) for x in part] == list(range(23))
