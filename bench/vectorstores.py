"""Vector stores side by side on the same vectors: Herald's default (usearch HNSW + SQLite),
Chroma and LanceDB with their defaults, plus ingestion throughput with the bundled embedder.

Data: ``--n`` vectors of dimension 384, deterministic (numpy seed 0) and clustered like text
embeddings: 1000 random unit centres, each vector = centre + Gaussian noise (sigma 0.6 / sqrt(d)
per coordinate), normalised. Queries are fresh points from the same distribution. Recall@10 is
against exact cosine search (numpy brute force). Each store gets the same ids, a small metadata
field and a short text per vector, and answers the queries one at a time (k=10, latency per
query incl. returning ids, texts and metadata).

    .venv/bin/python bench/vectorstores.py                # 100k vectors, 200 queries
    .venv/bin/python bench/vectorstores.py --n 20000 --skip chroma
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, pct, report

DIM = 384
K = 10


def make_data(n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sigma = 0.6 / np.sqrt(DIM)

    def draw(m: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), m)]
        x = x + rng.standard_normal((m, DIM)).astype(np.float32) * sigma
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(queries)


def exact(data: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    out = []
    for q in queries:
        sims = data @ q
        out.append(set(np.argpartition(-sims, K)[:K].tolist()))
    return out


def measure(
    name: str,
    build: Callable[[], Any],
    search: Callable[[Any, np.ndarray], list[int]],
    queries: np.ndarray,
    truth: list[set[int]],
) -> dict[str, Any]:
    gc.collect()
    t0 = time.perf_counter()
    handle = build()
    build_s = time.perf_counter() - t0
    search(handle, queries[0])  # warm caches (first query builds lazy structures)
    lat: list[float] = []
    hits = 0
    for q, t in zip(queries, truth, strict=True):
        s = time.perf_counter()
        ids = search(handle, q)
        lat.append((time.perf_counter() - s) * 1000)
        hits += len(t & set(ids[:K]))
    row = {
        "store": name,
        "build_s": round(build_s, 1),
        "p50_ms": round(pct(lat, 50), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "recall@10": round(hits / (K * len(queries)), 4),
    }
    print(row, flush=True)
    return row


def herald_store(
    tmp: Path, data: np.ndarray
) -> tuple[Callable[[], Any], Callable[[Any, np.ndarray], list[int]]]:
    from herald.rag.vectorstores.base import Chunk
    from herald.rag.vectorstores.local import LocalVectorStore

    def build() -> Any:
        store = LocalVectorStore(f"local://{tmp / 'herald'}")
        store.create("bench", DIM)
        for s in range(0, len(data), 5000):
            store.write(
                "bench",
                [
                    Chunk(str(i), str(i), f"text {i}", data[i], {"g": i % 10})
                    for i in range(s, min(s + 5000, len(data)))
                ],
            )
        store.search("bench", data[0], 1)  # the HNSW index is built from the change log here
        store.flush()
        return store

    def search(store: Any, q: np.ndarray) -> list[int]:
        return [int(h.id) for h in store.search("bench", q, K)]

    return build, search


def chroma_store(
    tmp: Path, data: np.ndarray
) -> tuple[Callable[[], Any], Callable[[Any, np.ndarray], list[int]]]:
    import chromadb
    from chromadb.config import Settings

    def build() -> Any:
        client = chromadb.PersistentClient(
            path=str(tmp / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
        col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
        step = min(5000, client.get_max_batch_size())
        for s in range(0, len(data), step):
            e = min(s + step, len(data))
            col.add(
                ids=[str(i) for i in range(s, e)],
                embeddings=data[s:e],
                documents=[f"text {i}" for i in range(s, e)],
                metadatas=[{"g": i % 10} for i in range(s, e)],
            )
        return col

    def search(col: Any, q: np.ndarray) -> list[int]:
        r = col.query(query_embeddings=[q], n_results=K)
        return [int(i) for i in r["ids"][0]]

    return build, search


def lance_store(
    tmp: Path, data: np.ndarray
) -> tuple[Callable[[], Any], Callable[[Any, np.ndarray], list[int]]]:
    import lancedb
    import pyarrow as pa

    def build() -> Any:
        db = lancedb.connect(str(tmp / "lance"))
        table = pa.table(
            {
                "id": pa.array(np.arange(len(data))),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), DIM),
                "text": [f"text {i}" for i in range(len(data))],
                "g": pa.array(np.arange(len(data)) % 10),
            }
        )
        return db.create_table("bench", table)

    def search(tbl: Any, q: np.ndarray) -> list[int]:
        rows = tbl.search(q).metric("cosine").limit(K).to_list()
        return [int(r["id"]) for r in rows]

    return build, search


def ingestion(chunks: int, threads: int | None) -> dict[str, Any]:
    """Chunks/s through Herald's ingestion (chunk + embed with the bundled MiniLM + store)."""
    from herald.rag.embeddings import open_embedder
    from herald.rag.service import RagService
    from herald.rag.settings import RagSettings

    handbook = ROOT / "examples" / "rag" / "handbook"
    texts = [p.read_text() for p in sorted(handbook.glob("*.md"))]
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        n = 0
        while n * 10 < chunks:  # each file gives ~10 chunks of <= 200 tokens
            (docs / f"doc{n}.md").write_text(f"# Copy {n}\n\n" + texts[n % len(texts)] * 2)
            n += 1
        svc = RagService(
            RagSettings(
                store_url=f"local://{tmp}/vs",
                catalog_url=f"sqlite:///{tmp}/c.db",
                embedding_threads=threads,
            ),
            home=Path(tmp),
        )
        emb = open_embedder("all-minilm-l6-v2", svc.settings)
        emb.threads = threads  # type: ignore[attr-defined]  # the embedder is cached per process
        emb.embed(["warm up"])
        svc.create_collection("bench")
        t0 = time.perf_counter()
        r = svc.ingest("bench", str(docs))
        dt = time.perf_counter() - t0
        sample = [c.text for c in svc.store_for(svc.get_collection("bench")).scan("bench")][:256]
        t1 = time.perf_counter()
        emb.embed(sample)
        embed_only = len(sample) / (time.perf_counter() - t1)
        RagService.reset()
    row = {
        "torch_threads": threads or "default",
        "files": n,
        "chunks": r.chunks,
        "seconds": round(dt, 1),
        "chunks_per_s": round(r.chunks / dt, 1),
        "embed_only_chunks_per_s": round(embed_only, 1),
    }
    print(row, flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="vectors (default 100000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["herald", "chroma", "lancedb", "ingest"]
    )
    ap.add_argument("--ingest-chunks", type=int, default=512)
    ap.add_argument(
        "--threads", type=int, nargs="*", default=[0, 1], help="torch threads (0 = default)"
    )
    args = ap.parse_args()

    data, queries = make_data(args.n, args.queries)
    truth = exact(data, queries)
    stores = {"herald": herald_store, "chroma": chroma_store, "lancedb": lance_store}
    rows = []
    with tempfile.TemporaryDirectory(prefix="herald-bench-vs-") as tmp:
        for name, make in stores.items():
            if name in args.skip:
                continue
            build, search = make(Path(tmp), data)
            label = {
                "herald": "Herald local (usearch HNSW M=16 + SQLite)",
                "chroma": "Chroma PersistentClient (defaults, cosine)",
                "lancedb": "LanceDB (defaults: no index, flat scan)",
            }[name]
            rows.append(measure(label, build, search, queries, truth))
            shutil.rmtree(Path(tmp), ignore_errors=True)
            Path(tmp).mkdir(exist_ok=True)
    report(
        f"Vector stores: {args.n:,} x {DIM} clustered vectors, {args.queries} queries, k={K}", rows
    )
    if "ingest" not in args.skip:
        report(
            "RAG ingestion throughput (bundled all-MiniLM-L6-v2, CPU)",
            [ingestion(args.ingest_chunks, t or None) for t in args.threads],
        )


if __name__ == "__main__":
    main()
