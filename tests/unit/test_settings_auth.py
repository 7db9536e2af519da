"""Settings from env vars and herald.yaml; the admin key file; the non-loopback bind guard."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from herald.auth import check_bind, check_key, ensure_api_key, is_loopback, key_path, read_api_key
from herald.errors import ConfigurationError
from herald.settings import DEFAULT_PORT, Settings, config_file, load_settings

pytestmark = pytest.mark.usefixtures("herald_env")


# --- settings -------------------------------------------------------------------------------


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "h"))
    s = load_settings()
    assert s.api.host == "127.0.0.1"
    assert s.api.port == DEFAULT_PORT == 8700
    assert s.home == tmp_path / "h"
    assert s.database_url is None
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'herald.db'}"
    assert s.api_key is None
    assert s.plugins == []
    assert config_file() is None


def test_env_vars_nested_and_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_API__PORT", "9123")
    monkeypatch.setenv("HERALD_API__HOST", "0.0.0.0")
    monkeypatch.setenv("HERALD_DATABASE_URL", "postgresql://u@localhost/herald")
    monkeypatch.setenv("HERALD_SENSORS__MAX_ATTEMPTS", "9")
    monkeypatch.setenv("HERALD_API_KEY", "k-123")
    s = load_settings()
    assert s.api.port == 9123
    assert s.api.host == "0.0.0.0"
    assert s.database_url == "postgresql://u@localhost/herald"
    assert s.resolved_database_url == "postgresql://u@localhost/herald"
    assert s.sensors.max_attempts == 9
    assert s.sensors.timeout_s == 60.0  # untouched siblings keep their defaults
    assert s.api_key == "k-123"


def test_home_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HERALD_HOME", "~/state")
    assert load_settings().home == tmp_path / "state"


def test_yaml_file_from_herald_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "herald.yaml"
    cfg.parent.mkdir()
    cfg.write_text(
        "api:\n  port: 9200\n"
        "database_url: sqlite:////var/tmp/h.db\n"
        "plugins: [a.py, rules.yaml]\n"
        "jobs:\n  default_executor: inline\n"
    )
    monkeypatch.setenv("HERALD_CONFIG", str(cfg))
    assert config_file() == cfg
    s = load_settings()
    assert s.api.port == 9200
    assert s.database_url == "sqlite:////var/tmp/h.db"
    assert s.plugins == ["a.py", "rules.yaml"]
    assert s.jobs.default_executor == "inline"
    assert s.api.host == "127.0.0.1"


def test_env_beats_yaml_and_init_beats_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "herald.yaml"
    cfg.write_text("api:\n  port: 9200\n  host: 127.0.0.2\n")
    monkeypatch.setenv("HERALD_CONFIG", str(cfg))
    monkeypatch.setenv("HERALD_API__PORT", "9300")
    s = load_settings()
    assert s.api.port == 9300
    assert s.api.host == "127.0.0.2"
    assert load_settings(log_level="DEBUG").log_level == "DEBUG"


def test_herald_yaml_in_cwd_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "herald.yaml").write_text("log_level: WARNING\n")
    assert config_file() == Path("herald.yaml")
    assert load_settings().log_level == "WARNING"


def test_herald_yaml_in_home_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "herald.yaml").write_text("sqlite_synchronous: NORMAL\n")
    monkeypatch.setenv("HERALD_HOME", str(home))
    assert load_settings().sqlite_synchronous == "NORMAL"


def test_invalid_env_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_API__PORT", "not-a-port")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    msg = info.value.message
    assert msg.startswith("invalid settings")
    assert "api.port" in msg
    assert "integer" in msg


def test_invalid_yaml_values_list_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "herald.yaml"
    cfg.write_text(
        "api:\n  port: 70000\n"
        "sqlite_synchronous: SOMETIMES\n"
        "sensors:\n  max_attempts: 0\n"
        "bogus: 1\n"
    )
    monkeypatch.setenv("HERALD_CONFIG", str(cfg))
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    msg = info.value.message
    assert str(cfg) in msg
    for field in ("api.port", "sqlite_synchronous", "sensors.max_attempts", "bogus"):
        assert f"  {field}: " in msg
    assert "65535" in msg


def test_invalid_override() -> None:
    with pytest.raises(ConfigurationError, match=r"jobs\.lease_s"):
        load_settings(jobs={"lease_s": 0})


def test_every_settings_field_is_described() -> None:
    def walk(model: type, prefix: str) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            sub = field.annotation
            if isinstance(sub, type) and hasattr(sub, "model_fields"):
                missing += walk(sub, f"{prefix}{name}.")
            elif not field.description:
                missing.append(prefix + name)
        return missing

    assert walk(Settings, "") == []


# --- the admin key --------------------------------------------------------------------------


def test_ensure_api_key_creates_a_private_key_file(tmp_path: Path) -> None:
    home = tmp_path / "new-home"
    key, created = ensure_api_key(home, None)
    assert created is True
    assert key.startswith("hk_") and len(key) > 30
    path = key_path(home)
    assert path == home / "admin.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key


def test_ensure_api_key_is_stable(tmp_path: Path) -> None:
    first, created1 = ensure_api_key(tmp_path, None)
    second, created2 = ensure_api_key(tmp_path, None)
    assert (created1, created2) == (True, False)
    assert second == first
    assert read_api_key(tmp_path, None) == first


def test_empty_key_file_is_replaced(tmp_path: Path) -> None:
    key_path(tmp_path).write_text("\n")
    key, created = ensure_api_key(tmp_path, None)
    assert created is True
    assert key and key_path(tmp_path).read_text().strip() == key


def test_key_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        ensure_api_key(tmp_path, None)
    finally:
        os.umask(old)
    assert stat.S_IMODE(key_path(tmp_path).stat().st_mode) == 0o600


def test_configured_key_wins(tmp_path: Path) -> None:
    stored, _ = ensure_api_key(tmp_path, None)
    key, created = ensure_api_key(tmp_path, "configured-key")
    assert (key, created) == ("configured-key", False)
    assert key_path(tmp_path).read_text().strip() == stored  # the file is left alone
    assert read_api_key(tmp_path, "configured-key") == "configured-key"


def test_configured_key_creates_no_file(tmp_path: Path) -> None:
    home = tmp_path / "h"
    assert ensure_api_key(home, "k") == ("k", False)
    assert not key_path(home).exists()
    assert read_api_key(home, None) is None


def test_check_key() -> None:
    assert check_key("abc", "abc") is True
    assert check_key("abd", "abc") is False
    assert check_key(None, "abc") is False
    assert check_key("", "abc") is False


# --- binding --------------------------------------------------------------------------------


def test_non_loopback_bind_without_key_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_bind("0.0.0.0", False)
    assert "0.0.0.0" in info.value.message
    assert "HERALD_API_KEY" in info.value.message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_bind_is_fine(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_non_loopback_bind_with_configured_key_is_fine(host: str) -> None:
    assert not is_loopback(host)
    check_bind(host, True)
    with pytest.raises(ConfigurationError):
        check_bind(host, False)
