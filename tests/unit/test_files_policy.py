"""The file access policy's decisions (herald.security.files) and its upload store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from herald.errors import Conflict, PayloadTooLarge
from herald.security.files import (
    CWD_ENV,
    FilePolicy,
    PathNotAllowed,
    is_loopback_host,
    record_server_cwd,
)
from herald.security.uploads import UploadError, UploadStore
from herald.settings import Settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HERALD_SECURITY__FILES__ALLOWED_ROOTS", "[]")
    monkeypatch.delenv(CWD_ENV, raising=False)
    h = tmp_path / "home"
    (h / "docs").mkdir(parents=True)
    (h / "docs" / "a.md").write_text("a")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "s.txt").write_text("secret")
    (h / "docs" / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    return h


def policy(home: Path, **files: object) -> FilePolicy:
    return FilePolicy.from_settings(Settings(home=home, security={"files": files}))


@pytest.mark.parametrize(
    "raw",
    [
        "{home}/docs/a.md",
        "file://{home}/docs/a.md",
        "local://{home}/docs",
        "{home}/docs/we%20ird.md",  # a literal name; its decoded form stays inside too
        "uploads:/abcdefgh12/x/y.md",
    ],
)
def test_allowed(home: Path, raw: str) -> None:
    got = policy(home).source(raw.replace("{home}", str(home)), purpose="source")
    assert Path(got).is_relative_to(home.resolve())


@pytest.mark.parametrize(
    "raw",
    [
        "{home}/docs/out/s.txt",
        "{home}/docs/out",
        "{home}/docs/%2e%2e/%2e%2e/outside/s.txt",
        "{home}/docs/%252e%252e/%252e%252e/outside/s.txt",
        "{home}/admin.key",
        "{home}/.env",
        "{home}/prompts/prompts.db",
        "{home}/monitoring/requests.jsonl",
        "~root/.ssh/id_rsa",
        "file://other-host/etc/passwd",
        "simplecache::file:///etc/passwd",
        "zip://a::file:///tmp/x.zip",
        "uploads:/x/../../etc",
        "uploads:/abcdefgh12/../../../outside/s.txt",
        "%252525252e",
        "file%3A%2F%2F%2Fetc%2Fpasswd",
        "{home}/docs/a.md\x00",
    ],
)
def test_refused(home: Path, raw: str) -> None:
    with pytest.raises(PathNotAllowed) as info:
        policy(home).source(raw.replace("{home}", str(home)), purpose="source")
    assert info.value.status == 403 and info.value.code == "path_not_allowed"
    assert str(home) not in info.value.message


def test_listed_roots_and_remote_urls(home: Path) -> None:
    outside = home.parent / "outside"
    assert policy(home, allowed_roots=[outside]).source(str(outside / "s.txt"), purpose="x")
    assert policy(home).source("s3://bucket/key", purpose="x") == "s3://bucket/key"
    with pytest.raises(PathNotAllowed):
        policy(home).resolve("s3://bucket/key", purpose="x")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_cwd_is_a_root_only_on_loopback(
    home: Path, host: str, loopback: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(home.parent / "outside")
    s = record_server_cwd(Settings(home=home), host)
    assert is_loopback_host(host) is loopback
    assert (os.environ.get(CWD_ENV) is not None) is loopback
    allowed = FilePolicy.from_settings(s)
    if loopback:
        assert allowed.source("s.txt", purpose="x").endswith("outside/s.txt")
        # a job subprocess reads the same decision from its environment
        assert FilePolicy.from_settings(Settings(home=home)).source("s.txt", purpose="x")
    else:
        with pytest.raises(PathNotAllowed):
            allowed.source("s.txt", purpose="x")
    off = Settings(home=home, security={"files": {"allow_cwd_on_loopback": False}})
    assert record_server_cwd(off, host).security.files.server_cwd is None
    with pytest.raises(PathNotAllowed):
        FilePolicy.from_settings(record_server_cwd(off, host)).source("s.txt", purpose="x")


def test_upload_store_bounds(tmp_path: Path) -> None:
    store = UploadStore(tmp_path, max_bytes=10, max_files=2)
    assert store.write("abcdefgh", "a/b.txt", b"12345").size == 5
    assert store.write("abcdefgh", "a/b.txt", b"678", offset=5).size == 8
    with pytest.raises(Conflict):
        store.write("abcdefgh", "a/b.txt", b"9", offset=3)
    with pytest.raises(PayloadTooLarge):
        store.write("abcdefgh", "c.txt", b"123")
    store.write("abcdefgh", "c.txt", b"12")
    with pytest.raises(PayloadTooLarge):
        store.write("abcdefgh", "d.txt", b"")
    for bad in ("../x", "/etc/x", "a/../b", ".hidden", "a\\b", "a//b", "x\x00"):
        with pytest.raises(UploadError):
            store.write("abcdefgh", bad, b"")
    with pytest.raises(UploadError):
        store.write("../etc", "x", b"")
    assert store.usage("abcdefgh") == (2, 10)
    assert store.delete("abcdefgh") and store.usage("abcdefgh") == (0, 0)
