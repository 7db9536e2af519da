"""The embedded default store: a usearch HNSW index per collection over a SQLite file.

    local:///var/lib/herald/rag        one folder per collection:
        <collection>/chunks.db         SQLite (WAL): chunks, metadata JSON, vectors, FTS5, change log
        <collection>/index-<seq>.usearch   HNSW snapshot that includes changes up to <seq>

SQLite is the source of truth; every write is one transaction that also appends to a change
log. The HNSW index is an in-process cache: before each search a process applies the change log
entries it has not seen (one indexed ``SELECT``), so writes made by any process — the ingestion
job's subprocess, the API server — are visible to the very next query. Snapshots are written
atomically (temp file + rename) every ``SNAPSHOT_EVERY`` changes and on close; a crash loses no
data, only replay work. Small or heavily filtered candidate sets are searched exactly.

Keyword search is SQLite FTS5 with its built-in BM25 ranking (porter stemming).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from herald.errors import BackendUnavailable, ConfigurationError
from herald.rag.errors import CollectionNotFound, DimensionMismatch
from herald.rag.filters import Condition
from herald.rag.vectorstores._cxx import pin_classic_locale
from herald.rag.vectorstores._sql import sqlite_where
from herald.rag.vectorstores.base import Chunk, Hit, VectorStore, check_k, check_vectors

pin_classic_locale()  # before usearch loads, or llama.cpp in this process breaks (see _cxx.py)
try:
    import numpy as np
    from usearch.index import Index
except ImportError as exc:  # pragma: no cover - depends on the install
    raise BackendUnavailable(
        f"the local vector store needs numpy and usearch ({exc}); pip install 'herald[rag]'"
    ) from exc

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
SNAPSHOT_EVERY = 5000  # changes since the last snapshot before writing a new one
EXACT_BELOW = 5_000  # collections (or filtered candidate sets) this small are searched exactly
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 96

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ref_doc_id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_ref_doc ON chunks(ref_doc_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL, op TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fields (name TEXT PRIMARY KEY);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='key', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text) VALUES (new.key, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.key, old.text);
END;
"""


def check_collection_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigurationError(
            f"invalid collection name {name!r}: use letters, digits, '.', '_' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return name


class _Col:
    """One collection open in this process: its SQLite connection and HNSW cache."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.RLock()
        self.inode = (folder / "chunks.db").stat().st_ino  # changes when dropped and recreated
        self.db = sqlite3.connect(folder / "chunks.db", check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='dimension'").fetchone()
        if row is None:
            raise CollectionNotFound(f"collection folder {folder} has no dimension")
        self.dim = int(row[0])
        self.index: Index | None = None
        self.seq = 0  # change-log position the in-memory index includes
        self.snap_seq = 0

    def new_index(self) -> Index:
        return Index(
            ndim=self.dim,
            metric="cos",
            dtype="f32",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )

    def last_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return int(row[0]) if row else 0

    def pruned_upto(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='pruned_upto'").fetchone()
        return int(row[0]) if row else 0

    def load(self) -> None:
        """Latest snapshot plus the change log after it (or a rebuild if none fits)."""
        snaps = sorted(
            (int(p.stem.split("-", 1)[1]), p) for p in self.folder.glob("index-*.usearch")
        )
        pruned = self.pruned_upto()
        for seq, path in reversed(snaps):
            if seq < pruned:
                continue
            try:
                index = Index.restore(str(path))
            except Exception:  # noqa: S112 - a damaged snapshot: try older / rebuild
                continue
            if index is not None and index.ndim == self.dim:
                self.index, self.seq, self.snap_seq = index, seq, seq
                return
        self.rebuild()

    def rebuild(self) -> None:
        index = self.new_index()
        seq = self.last_seq()  # rows written after this are re-applied by catch_up (idempotent)
        rows = self.db.execute("SELECT key, vector FROM chunks").fetchall()
        if rows:
            keys = np.array([r[0] for r in rows], dtype=np.uint64)
            vecs = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            index.add(keys, vecs)
        self.index, self.seq, self.snap_seq = index, int(seq), 0

    def catch_up(self) -> Index:
        """Apply change-log entries written (by any process) since this index was built."""
        if self.index is None:
            self.load()
        assert self.index is not None
        last = self.last_seq()
        if last == self.seq:  # one indexed read when up to date
            return self.index
        if self.seq < self.pruned_upto():  # another process snapshotted and pruned the log
            self.index = None
            self.load()
            assert self.index is not None
        changes = self.db.execute(
            "SELECT seq, key, op FROM changes WHERE seq > ? ORDER BY seq", (self.seq,)
        ).fetchall()
        if changes:
            final: dict[int, str] = {}
            for _, key, op in changes:
                final[key] = op
            gone = [k for k, op in final.items() if op == "del"]
            if gone:
                self.index.remove(np.array(gone, dtype=np.uint64))
            added = [k for k, op in final.items() if op == "add"]
            if added:  # keys are never reused: removing first makes re-applying idempotent
                self.index.remove(np.array(added, dtype=np.uint64))
            for start in range(0, len(added), 900):
                part = added[start : start + 900]
                rows = self.db.execute(
                    f"SELECT key, vector FROM chunks WHERE key IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                if rows:
                    self.index.add(
                        np.array([r[0] for r in rows], dtype=np.uint64),
                        np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]),
                    )
        self.seq = max(last, changes[-1][0] if changes else 0)
        return self.index

    def snapshot(self, force: bool = False) -> None:
        if self.index is None or (not force and self.seq - self.snap_seq < SNAPSHOT_EVERY):
            return
        if self.seq == self.snap_seq and any(self.folder.glob(f"index-{self.seq}.usearch")):
            return
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        try:
            self.index.save(tmp)
            os.replace(tmp, self.folder / f"index-{self.seq}.usearch")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.snap_seq = self.seq
        for p in self.folder.glob("index-*.usearch"):
            if int(p.stem.split("-", 1)[1]) < self.seq:
                p.unlink(missing_ok=True)
        with self.db:  # older log entries are in the snapshot now
            self.db.execute("DELETE FROM changes WHERE seq <= ?", (self.seq,))
            self.db.execute(
                "INSERT INTO meta VALUES ('pruned_upto', ?) ON CONFLICT(key) DO UPDATE "
                "SET value = max(CAST(value AS INTEGER), excluded.value)",
                (str(self.seq),),
            )

    def close(self) -> None:
        with self.lock:
            try:
                if self.index is not None:
                    self.catch_up()
                    self.snapshot(force=self.seq != self.snap_seq)
            finally:
                self.db.close()


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


class LocalVectorStore(VectorStore):
    """``local:///absolute/folder`` (``local://~/x`` and relative paths are refused)."""

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        path = unquote(parsed.path)
        if parsed.scheme != "local" or parsed.netloc or not path.startswith("/"):
            raise ConfigurationError(
                f"bad local vector store URL {url!r}; use local:///absolute/folder"
            )
        self.url = url
        self.root = Path(path)
        self.root.mkdir(parents=True, exist_ok=True)
        self._cols: dict[str, _Col] = {}
        self._lock = threading.Lock()

    # collections ----------------------------------------------------------------------------
    def _folder(self, collection: str) -> Path:
        return self.root / check_collection_name(collection)

    def _col(self, collection: str) -> _Col:
        with self._lock:
            col = self._cols.get(collection)
            if col is not None and _inode(col.folder / "chunks.db") == col.inode:
                return col
            if col is not None:  # dropped (and maybe recreated) by another process
                col.db.close()
                del self._cols[collection]
            folder = self._folder(collection)
            if not (folder / "chunks.db").exists():
                raise CollectionNotFound(f"collection {collection!r} does not exist")
            col = self._cols[collection] = _Col(folder)
            return col

    def create(self, collection: str, dimension: int) -> None:
        if dimension < 1:
            raise DimensionMismatch("dimension must be >= 1")
        folder = self._folder(collection)
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(folder / "chunks.db", timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            with db:
                db.execute(
                    "INSERT INTO meta VALUES ('dimension', ?) ON CONFLICT(key) DO NOTHING",
                    (str(dimension),),
                )
            (dim,) = db.execute("SELECT value FROM meta WHERE key='dimension'").fetchone()
        finally:
            db.close()
        if int(dim) != dimension:
            raise DimensionMismatch(
                f"collection {collection!r} exists with dimension {dim}, not {dimension}"
            )

    def drop(self, collection: str) -> None:
        import shutil

        with self._lock:
            col = self._cols.pop(collection, None)
        if col is not None:
            col.db.close()
        shutil.rmtree(self._folder(collection), ignore_errors=True)

    def dimension(self, collection: str) -> int:
        return self._col(collection).dim

    # writes ---------------------------------------------------------------------------------
    def write(
        self, collection: str, chunks: Sequence[Chunk], *, replace: Sequence[str] = ()
    ) -> None:
        col = self._col(collection)
        check_vectors(collection, col.dim, [c.vector for c in chunks])
        ids = [c.id for c in chunks]
        if len(set(ids)) != len(ids):
            raise ValueError("chunk ids must be unique within one write")
        with col.lock, col.db:
            self._delete_rows(col, "ref_doc_id", list(replace))
            self._delete_rows(col, "id", ids)
            names: set[str] = set()
            for c in chunks:
                vec = np.asarray(c.vector, dtype=np.float32).tobytes()
                cur = col.db.execute(
                    "INSERT INTO chunks (id, ref_doc_id, text, metadata, vector) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (c.id, c.ref_doc_id, c.text, json.dumps(dict(c.metadata)), vec),
                )
                col.db.execute("INSERT INTO changes (key, op) VALUES (?, 'add')", (cur.lastrowid,))
                names.update(c.metadata)
            col.db.executemany(
                "INSERT INTO fields VALUES (?) ON CONFLICT DO NOTHING", [(n,) for n in names]
            )
        self._after_write(col)

    def _delete_rows(self, col: _Col, column: str, values: list[str]) -> int:
        n = 0
        for start in range(0, len(values), 900):
            part = values[start : start + 900]
            marks = ",".join("?" * len(part))
            keys = col.db.execute(
                f"SELECT key FROM chunks WHERE {column} IN ({marks})", part
            ).fetchall()
            if keys:
                col.db.executemany("INSERT INTO changes (key, op) VALUES (?, 'del')", keys)
                col.db.execute(f"DELETE FROM chunks WHERE {column} IN ({marks})", part)
                n += len(keys)
        return n

    def _after_write(self, col: _Col) -> None:
        with col.lock:
            if col.index is not None:
                col.catch_up()
                col.snapshot()

    def delete(self, collection: str, ref_doc_ids: Sequence[str]) -> int:
        col = self._col(collection)
        with col.lock, col.db:
            n = self._delete_rows(col, "ref_doc_id", list(ref_doc_ids))
        self._after_write(col)
        return n

    # reads ----------------------------------------------------------------------------------
    def _rows(self, col: _Col, keys: list[int], with_vectors: bool) -> dict[int, tuple[Any, ...]]:
        out: dict[int, tuple[Any, ...]] = {}
        cols = "key, id, ref_doc_id, text, metadata" + (", vector" if with_vectors else "")
        for start in range(0, len(keys), 900):
            part = keys[start : start + 900]
            for row in col.db.execute(
                f"SELECT {cols} FROM chunks WHERE key IN ({','.join('?' * len(part))})", part
            ):
                out[row[0]] = row
        return out

    @staticmethod
    def _hit(row: tuple[Any, ...], score: float, with_vectors: bool) -> Hit:
        vector = np.frombuffer(row[5], dtype=np.float32).tolist() if with_vectors else None
        return Hit(row[1], row[2], row[3], float(score), json.loads(row[4]), vector)

    def search(
        self,
        collection: str,
        vector: Sequence[float],
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        check_k(k)
        col = self._col(collection)
        q = np.asarray(vector, dtype=np.float32)
        if q.shape != (col.dim,) or not np.isfinite(q).all():
            check_vectors(collection, col.dim, [list(vector)])  # raises the clear error
        with col.lock:
            index = col.catch_up()
            size = len(index)
            if size == 0:
                return []
            if conditions:
                where, params = sqlite_where(conditions)
                keys = [
                    r[0] for r in col.db.execute(f"SELECT key FROM chunks WHERE {where}", params)
                ]
                if len(keys) <= EXACT_BELOW or len(keys) * 10 <= size:
                    return self._exact(col, q, keys, k, with_vectors)
                allowed = set(keys)
                want = k * 4
                while True:
                    m = index.search(q, min(want, size))
                    found = [
                        (int(key), 1.0 - float(d))
                        for key, d in zip(m.keys, m.distances, strict=True)
                        if int(key) in allowed
                    ]
                    if len(found) >= k or want >= size:
                        break
                    want *= 4
            else:
                m = index.search(q, min(k, size), exact=size <= EXACT_BELOW)
                found = [
                    (int(key), 1.0 - float(d)) for key, d in zip(m.keys, m.distances, strict=True)
                ]
            found = found[:k]
            rows = self._rows(col, [key for key, _ in found], with_vectors)
        return [self._hit(rows[key], s, with_vectors) for key, s in found if key in rows]

    def _exact(self, col: _Col, q: Any, keys: list[int], k: int, with_vectors: bool) -> list[Hit]:
        if not keys:
            return []
        rows = self._rows(col, keys, True)
        order = list(rows)
        mat = np.stack([np.frombuffer(rows[key][5], dtype=np.float32) for key in order])
        norms = np.linalg.norm(mat, axis=1) * (float(np.linalg.norm(q)) or 1.0)
        sims = (mat @ q) / np.where(norms == 0, 1.0, norms)
        top = np.argsort(-sims)[:k]
        return [self._hit(rows[order[i]], float(sims[i]), with_vectors) for i in top]

    def keyword_search(
        self,
        collection: str,
        query: str,
        k: int,
        conditions: Sequence[Condition] = (),
        *,
        with_vectors: bool = False,
    ) -> list[Hit]:
        check_k(k)
        col = self._col(collection)
        terms = sorted({w.lower() for w in re.findall(r"\w+", query)})
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        where, params = sqlite_where(conditions, "c.metadata")
        cols = "c.key, c.id, c.ref_doc_id, c.text, c.metadata" + (
            ", c.vector" if with_vectors else ""
        )
        with col.lock:
            rows = col.db.execute(
                f"SELECT {cols}, bm25(chunks_fts) AS rank FROM chunks_fts "
                "JOIN chunks c ON c.key = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?",
                [match, *params, k],
            ).fetchall()
        return [self._hit(r[:-1], -float(r[-1]), with_vectors) for r in rows]

    def fields(self, collection: str) -> set[str]:
        col = self._col(collection)
        with col.lock:
            return {r[0] for r in col.db.execute("SELECT name FROM fields")}

    def count(self, collection: str) -> int:
        col = self._col(collection)
        with col.lock:
            (n,) = col.db.execute("SELECT count(*) FROM chunks").fetchone()
        return int(n)

    def scan(self, collection: str) -> Iterator[Chunk]:
        col = self._col(collection)
        with col.lock:
            rows = col.db.execute(
                "SELECT id, ref_doc_id, text, metadata, vector FROM chunks ORDER BY key"
            ).fetchall()
        for r in rows:
            yield Chunk(
                r[0], r[1], r[2], np.frombuffer(r[4], dtype=np.float32).tolist(), json.loads(r[3])
            )

    def flush(self) -> None:
        """Write an HNSW snapshot of every open collection that has unsaved changes."""
        with self._lock:
            cols = list(self._cols.values())
        for col in cols:
            with col.lock:
                if col.index is not None:
                    col.catch_up()
                    col.snapshot(force=col.seq != col.snap_seq)

    def close(self) -> None:
        with self._lock:
            cols = list(self._cols.values())
            self._cols.clear()
        for col in cols:
            col.close()
