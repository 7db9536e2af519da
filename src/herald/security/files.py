"""One file-access policy for every server-side path a caller can name (``security.files``).

RAG sources, data sets, evaluation suites given as paths, ``model.register``'s
``artifact_uri``, fine-tune data sets and suites, batch inputs and prompt files all pass
through :func:`resolve_caller_path` (or :func:`check_caller_source` for fields that also take
a remote URL). A path is allowed only when, after

1. URL-decoding (``file://``, ``local://``, percent-encoding — every decoding layer is checked,
   so ``%252e%252e%252f`` cannot traverse in a reader that decodes once more),
2. refusing NUL bytes, ``~user`` forms, fsspec chains (``simplecache::…``) and archive or cache
   wrappers (``zip://``, ``tar://``…) that read server files,
3. ``~`` expansion to the server user's home only, and
4. symlink resolution (``Path.resolve`` and ``os.path.realpath``),

it lies inside one of the **allowed roots**:

- ``$HERALD_HOME`` (except its state: ``admin.key``, the database, ``herald.yaml``, the request
  logs under ``monitoring/``, any ``*.key``/``*.pem`` and hidden files),
- the artifact store's folder when it is local (``file://``),
- the folders listed in ``security.files.allowed_roots``,
- the working directory of ``herald up``/``herald api``/``herald worker`` while it binds a
  loopback address (``security.files.allow_cwd_on_loopback``). The server records it at start
  in ``security.files.server_cwd`` and exports ``HERALD_SECURITY__FILES__SERVER_CWD`` so jobs
  in subprocesses (which read their settings with ``load_settings()``) give the same answer.

``uploads:/ID/relative/path`` names a file the CLI uploaded into ``$HERALD_HOME/uploads/ID``
(``herald rag ingest ./docs`` against a remote server). Remote URLs (``s3://``, ``https://``)
are not files of this server: they pass unchanged to their own store (and the egress policy).

A refusal is :class:`PathNotAllowed` (HTTP 403, code ``path_not_allowed``); its message names
the policy and the setting but never the server's folders nor whether the path exists.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote

from herald.errors import HeraldError

log = logging.getLogger("herald.security.files")

SETTING = "security.files.allowed_roots"
CWD_ENV = "HERALD_SECURITY__FILES__SERVER_CWD"
UPLOADS_PREFIX = "uploads:/"
UPLOADS_DIR = "uploads"
UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_DECODE_LAYERS = 4
LOCAL_SCHEMES = frozenset({"file", "local"})
# fsspec protocols that read (or cache) files of the server's own disk behind another name
WRAPPER_SCHEMES = frozenset(
    {
        "zip",
        "tar",
        "libarchive",
        "simplecache",
        "filecache",
        "blockcache",
        "cached",
        "dir",
        "reference",
        "jlab",
        "jupyter",
        "arrow_hdfs",
        "hdfs",
        "webhdfs",
    }
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
# state of $HERALD_HOME no caller may read (keys, database, config, request logs)
PROTECTED_IN_HOME = frozenset(
    {
        "admin.key",
        "herald.db",
        "herald.db-wal",
        "herald.db-shm",
        "herald.db-journal",
        "herald.yaml",
        "monitoring",
        "secrets",
        "sessions",
        "keys",
    }
)
PROTECTED_SUFFIXES = (".key", ".pem", ".p12", ".pfx")
# databases inside $HERALD_HOME (registry, prompts, RAG catalog, sessions) are state too
PROTECTED_IN_HOME_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal", ".sqlite", ".sqlite3")


class PathNotAllowed(HeraldError):
    """A caller named a server path outside ``security.files.allowed_roots`` (403)."""

    code = "path_not_allowed"
    status = 403


def _refuse(purpose: str, why: str = "") -> PathNotAllowed:
    reason = f" ({why})" if why else ""
    return PathNotAllowed(
        f"{purpose}: not allowed by the server's file access policy{reason}. The server reads "
        f"only files under $HERALD_HOME and the folders its operator lists in {SETTING} "
        "(plus its working directory while it listens on loopback only). Upload the file "
        "instead (the herald CLI uploads local files and folders), use a URL of an object "
        f"store, or ask the operator to add the folder to {SETTING}."
    )


def is_loopback_host(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` and ``localhost`` (never ``0.0.0.0`` or ``::``)."""
    import ipaddress

    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _real(p: Path) -> Path:
    """Both resolutions agree on POSIX; taking the two guards a platform where they do not."""
    a = Path(os.path.realpath(p))
    b = p.resolve(strict=False)
    return a if a == b else b


@dataclass(frozen=True)
class FilePolicy:
    """The allowed roots, resolved; build it with :meth:`from_settings`."""

    home: Path
    roots: tuple[Path, ...]
    suite_folders: tuple[Path, ...] = ()  # the operator's suite folders (suites by name)

    @classmethod
    def from_settings(cls, settings: Any) -> FilePolicy:
        fs = settings.security.files
        home = _real(Path(settings.home).expanduser())
        roots: list[Path] = [home]
        art = getattr(settings, "resolved_artifacts_url", "") or ""
        if art.startswith("file://"):
            roots.append(_real(Path(unquote(art.removeprefix("file://")))))
        roots += [_real(Path(p).expanduser()) for p in fs.allowed_roots]
        if fs.allow_cwd_on_loopback and fs.server_cwd is not None:
            roots.append(_real(Path(fs.server_cwd)))
        ev = getattr(settings, "evaluation", None)
        suites = [home / "evaluations" / "suites", *map(Path, getattr(ev, "suite_paths", []))]
        return cls(
            home=home,
            roots=tuple(dict.fromkeys(roots)),
            suite_folders=tuple(dict.fromkeys(_real(p) for p in suites)),
        )

    @property
    def uploads(self) -> Path:
        return self.home / UPLOADS_DIR

    def allows(self, path: Path) -> bool:
        """Whether an already resolved absolute ``path`` may be read."""
        if path.name.endswith(PROTECTED_SUFFIXES):
            return False
        if path.is_relative_to(self.home):
            rel = path.relative_to(self.home).parts
            if rel and (
                rel[0] in PROTECTED_IN_HOME
                or path.name.endswith(PROTECTED_IN_HOME_SUFFIXES)
                or any(p.startswith(".") for p in rel)
            ):
                return False
        return any(path.is_relative_to(r) for r in self.roots)

    # ------------------------------------------------------------------------------------
    def resolve(self, raw: str, *, purpose: str) -> Path:
        """The resolved local path ``raw`` names, or :class:`PathNotAllowed`."""
        kind, _ = _classify(raw)
        if kind == "remote":
            raise _refuse(purpose, "expected a path of this server, got a URL")
        return self._check(raw, purpose)

    def source(self, raw: str, *, purpose: str) -> str:
        """``raw`` unchanged when it is a remote URL, else its resolved, allowed local path."""
        kind, _ = _classify(raw)
        if kind == "remote":
            return raw
        return str(self._check(raw, purpose))

    def _check(self, raw: str, purpose: str) -> Path:
        if not isinstance(raw, str) or not raw.strip():
            raise _refuse(purpose, "empty path")
        layers = [raw]
        while len(layers) <= MAX_DECODE_LAYERS:
            try:
                nxt = unquote(layers[-1], errors="strict")
            except UnicodeDecodeError:
                self._deny(raw, purpose, "percent-encoding that is not UTF-8")
            if nxt == layers[-1]:
                break
            layers.append(nxt)
        else:
            self._deny(raw, purpose, "too many layers of percent-encoding")
        first: Path | None = None
        for i, layer in enumerate(layers):
            if "\x00" in layer:
                self._deny(raw, purpose, "NUL byte")
            kind, value = _classify(layer)
            if kind == "remote":  # only an encoded layer can get here: `file%3A…` etc.
                self._deny(raw, purpose, "an encoded URL")
            if kind == "refuse":
                self._deny(raw, purpose, value)
            if kind == "uploads":
                path = self._upload(value, raw, purpose)
            else:
                path = self._local(value, raw, purpose)
            if not self.allows(path):
                self._deny(raw, purpose, "", path)
            if i == 0:
                first = path
        assert first is not None
        return first

    def _local(self, value: str, raw: str, purpose: str) -> Path:
        if value.startswith("~"):
            head = value.split("/", 1)[0]
            if head != "~":
                self._deny(raw, purpose, "~user paths are not accepted")
            value = str(Path.home()) + value[1:]
        p = Path(value)
        if not p.is_absolute():
            p = Path.cwd() / p
        return _real(p)

    def _upload(self, value: str, raw: str, purpose: str) -> Path:
        upload_id, _, rel = value.partition("/")
        if not UPLOAD_ID.match(upload_id):
            self._deny(raw, purpose, "bad upload id")
        base = _real(self.uploads / upload_id)
        p = _real(base / rel) if rel else base
        if not p.is_relative_to(base):
            self._deny(raw, purpose, "outside its upload")
        return p

    def _deny(self, raw: str, purpose: str, why: str, path: Path | None = None) -> NoReturn:
        log.warning(
            "file access refused: %s %r%s%s",
            purpose,
            raw[:300],
            f" ({why})" if why else "",
            f" -> {path}" if path is not None else "",
        )
        raise _refuse(purpose, why if why.startswith(("~user", "NUL")) else "")

    def configured_suite(self, ref: str) -> bool:
        """``ref`` is the absolute path of a YAML file in one of the operator's suite folders
        (the API resolves a suite name and publishes the file it found)."""
        if not ref.startswith("/") or "\x00" in ref or "%" in ref:
            return False
        real = _real(Path(ref))
        return real.suffix in (".yaml", ".yml") and any(
            real.is_relative_to(f) for f in self.suite_folders
        )

    def walk_allowed(self, path: Path) -> bool:
        """For folder walks: a file found under an allowed folder (maybe a symlink) is read only
        when its resolved target is allowed too."""
        return self.allows(_real(path))


def _classify(s: str) -> tuple[str, str]:
    """(kind, value): ``path`` (a local path), ``uploads`` (the part after ``uploads:/``),
    ``remote`` (a URL for another store) or ``refuse`` (value: the reason)."""
    m = _SCHEME.match(s)
    if "::" in s and (m is not None or "://" in s):
        return "refuse", "chained URLs are not accepted"
    if m is not None:
        scheme = m.group(1).lower()
        if scheme in LOCAL_SCHEMES:
            host, sep, path = s[m.end() :].partition("/")
            if host not in ("", "localhost"):
                return "refuse", "a file URL names a host"
            return "path", "/" + unquote(path) if sep else "/"
        if scheme in WRAPPER_SCHEMES:
            return "refuse", f"{scheme}:// reads files of the server"
        return "remote", s
    if s.startswith(UPLOADS_PREFIX):
        return "uploads", s[len(UPLOADS_PREFIX) :]
    return "path", s


def is_remote(raw: str) -> bool:
    """Whether ``raw`` is a URL for another store (not a path of this server)."""
    return _classify(raw)[0] == "remote"


def resolve_caller_path(raw: str, settings: Any, *, purpose: str) -> Path:
    """The allowed local path ``raw`` names under ``settings``' policy (raises
    :class:`PathNotAllowed`, 403)."""
    return FilePolicy.from_settings(settings).resolve(raw, purpose=purpose)


def check_caller_source(raw: str, settings: Any, *, purpose: str) -> str:
    """A remote URL unchanged, or the allowed local path ``raw`` names (as a string)."""
    return FilePolicy.from_settings(settings).source(raw, purpose=purpose)


def record_server_cwd(settings: Any, host: str) -> Any:
    """At start of a server or worker: allow its working directory while it binds ``host``
    on loopback only, and pass that decision to its jobs through the environment."""
    fs = settings.security.files
    cwd = Path.cwd().resolve() if fs.allow_cwd_on_loopback and is_loopback_host(host) else None
    if cwd is not None:
        os.environ[CWD_ENV] = str(cwd)
    else:
        os.environ.pop(CWD_ENV, None)
    files = fs.model_copy(update={"server_cwd": cwd})
    security = settings.security.model_copy(update={"files": files})
    return settings.model_copy(update={"security": security})


# the fields of messages and jobs that name server paths ------------------------------------
Checker = Callable[[Mapping[str, Any], FilePolicy], None]


def _source(field: str) -> Checker:
    def check(data: Mapping[str, Any], policy: FilePolicy) -> None:
        value = data.get(field)
        if isinstance(value, str) and value:
            policy.source(value, purpose=field)

    return check


def _suites(field: str) -> Checker:
    def check(data: Mapping[str, Any], policy: FilePolicy) -> None:
        value = data.get(field)
        for ref in [value] if isinstance(value, str) else value or []:
            if isinstance(ref, str) and not is_suite_name(ref) and not policy.configured_suite(ref):
                policy.source(ref, purpose=field)

    return check


def _dataset(field: str) -> Checker:
    def check(data: Mapping[str, Any], policy: FilePolicy) -> None:
        value = data.get(field)
        if isinstance(value, str) and looks_like_data_file(value):
            policy.source(value, purpose=field)

    return check


def looks_like_data_file(ref: str) -> bool:
    """A ``dataset`` that names a file (path or URL), not a registered data set."""
    if ref.startswith("datasets:/"):
        return False
    return looks_like_path(ref) or "/" in ref or ref.lower().endswith(DATA_SUFFIXES)


DATA_SUFFIXES = tuple(
    s + c
    for s in (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq")
    for c in ("", ".gz", ".bz2", ".xz", ".zst")
)


def _model(field: str) -> Checker:
    def check(data: Mapping[str, Any], policy: FilePolicy) -> None:
        value = data.get(field)
        if isinstance(value, str) and looks_like_path(value):
            policy.source(value, purpose=field)

    return check


def _nested(field: str, inner: str) -> Checker:
    def check(data: Mapping[str, Any], policy: FilePolicy) -> None:
        value = data.get(field)
        if isinstance(value, Mapping):
            _source(inner)(value, policy)

    return check


def is_suite_name(ref: str) -> bool:
    """A suite named by name (looked up in the configured suite folders), not a path."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", ref)) and not ref.endswith(
        (".yaml", ".yml")
    )


def looks_like_path(ref: str) -> bool:
    """A model reference that names a local file or folder (not a registry name or hub id)."""
    return (
        ref.startswith(("/", ".", "~", UPLOADS_PREFIX))
        or "\\" in ref
        or "\x00" in ref
        or "%" in ref
        or (_SCHEME.match(ref) is not None and not ref.startswith(("models:/", "datasets:/")))
        or ref.count("/") > 1
    )


MESSAGE_PATHS: dict[str, list[Checker]] = {
    "documents.ingest.requested": [_source("source")],
    "dataset.register": [_source("source")],
    "evaluation.requested": [_suites("suite")],
    "model.register": [_source("artifact_uri")],
    "finetune.requested": [
        _dataset("dataset"),
        _model("base_model"),
        _suites("eval_suites"),
        _nested("distributed", "storage_path"),
    ],
    "demo.requested": [_dataset("dataset"), _suites("suite")],
}
JOB_PATHS: dict[str, list[Checker]] = {
    "rag.ingest": MESSAGE_PATHS["documents.ingest.requested"],
    "dataset.register": MESSAGE_PATHS["dataset.register"],
    "evaluation.run": MESSAGE_PATHS["evaluation.requested"],
    "finetune": MESSAGE_PATHS["finetune.requested"],
}


def check_paths(
    table: Mapping[str, Iterable[Checker]], name: str, data: Any, settings: Any
) -> None:
    """Check every path field of message type / job ``name`` in ``data`` (403 if one is out)."""
    checks = list(table.get(name, ()))
    if not checks:
        return
    if hasattr(data, "payload"):
        data = data.payload()
    elif hasattr(data, "model_dump"):
        data = data.model_dump()
    if not isinstance(data, Mapping):
        return
    policy = FilePolicy.from_settings(settings)
    for check in checks:
        check(data, policy)


def check_message_paths(type_: str, data: Any, settings: Any) -> None:
    """The publish edge: refuse a message that names a server path outside the roots."""
    check_paths(MESSAGE_PATHS, type_, data, settings)


def check_job_paths(name: str, params: Any, settings: Any) -> None:
    """The job-submission edge (``POST /v1/jobs``)."""
    check_paths(JOB_PATHS, name, params, settings)


__all__ = [
    "CWD_ENV",
    "UPLOADS_PREFIX",
    "FilePolicy",
    "PathNotAllowed",
    "check_caller_source",
    "check_job_paths",
    "check_message_paths",
    "is_loopback_host",
    "is_remote",
    "is_suite_name",
    "looks_like_path",
    "record_server_cwd",
    "resolve_caller_path",
]
