"""Local-only behaviour of the folder artifact store; the shared contract runs in
tests/contract/test_artifact_stores.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.artifacts import ArtifactCorrupted, open_artifact_store
from herald.artifacts.local import LocalArtifactStore
from herald.errors import ConfigurationError
from herald.testing.artifacts import make_model_dir


def test_local_dir_is_the_stored_folder(tmp_path: Path) -> None:
    store = LocalArtifactStore((tmp_path / "s").as_uri())
    store.put_dir("m/1", make_model_dir(tmp_path))
    assert store.local_dir("m/1") == tmp_path / "s" / "m" / "1"
    assert not list((tmp_path / "s" / ".herald" / "tmp").iterdir())  # temp space cleaned up


def test_extra_file_in_folder_is_corruption(tmp_path: Path) -> None:
    store = LocalArtifactStore((tmp_path / "s").as_uri())
    store.put_dir("m", make_model_dir(tmp_path))
    (tmp_path / "s" / "m" / "evil.py").write_text("print('hi')")
    with pytest.raises(ArtifactCorrupted, match=r"evil\.py"):
        store.local_dir("m")


def test_symlinked_files_are_copied(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_text("{}")
    src = tmp_path / "snap"
    src.mkdir()
    (src / "config.json").symlink_to(blob)
    store = LocalArtifactStore((tmp_path / "s").as_uri())
    store.put_dir("m", src)
    copied = store.local_dir("m") / "config.json"
    assert not copied.is_symlink()
    assert copied.read_text() == "{}"


def test_default_url_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HERALD_ARTIFACTS_URL", raising=False)
    store = open_artifact_store()
    assert isinstance(store, LocalArtifactStore)
    assert store.root == (tmp_path / "home" / "artifacts").resolve()
    monkeypatch.setenv("HERALD_ARTIFACTS_URL", str(tmp_path / "elsewhere"))
    assert open_artifact_store().url == (tmp_path / "elsewhere").resolve().as_uri()


def test_unknown_scheme(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no artifact store for gopher://"):
        open_artifact_store("gopher://x/y", cache_dir=tmp_path)


def test_file_url_with_host_refused(tmp_path: Path) -> None:
    from herald.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="names a host"):
        open_artifact_store("file://evil.example.com/x", cache_dir=tmp_path)
