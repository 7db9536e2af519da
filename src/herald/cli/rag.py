"""``herald rag …``: collections, ingestion with a progress bar, queries and documents.

Every command talks to a running Herald (``HERALD_URL``, ``HERALD_API_KEY``). ``ingest``
publishes ``documents.ingest.requested`` and, with ``--wait`` (the default), follows the flow's
``job.progressed`` messages until ``documents.ingested`` or ``job.failed``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from herald.cli.common import JsonOpt, err, out
from herald.cli.common import client as _client
from herald.cli.common import fail as _fail
from herald.cli.tables import Col, print_table, when
from herald.cli.upload import send_local
from herald.errors import HeraldError

app = typer.Typer(
    help="RAG collections: create, ingest documents, query, list and delete.",
    no_args_is_help=True,
)
CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]


def _req(method: str, path: str, **kw: Any) -> Any:
    c = _client()
    try:
        return c._request(method, path, **kw)
    except HeraldError as exc:
        _fail(exc.message)
    finally:
        c.close()


def _seg(name: str) -> str:
    return quote(name, safe="")


def _print_json(data: Any) -> None:
    print(json.dumps(data, default=str))


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            _fail(f"{what} expects key=value, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        result[key] = value if isinstance(value, str | int | float | bool) else raw
    return result


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Collection name (letters, digits, . _ -).")],
    embedding_model: Annotated[
        str | None,
        typer.Option(help="all-minilm-l6-v2 (default), sentence-transformers:…, openai:M@URL"),
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Tokens per chunk.")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(help="Tokens shared by neighbours.")] = None,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a collection with its embedding model and chunking config."""
    body: dict[str, Any] = {"name": name, "description": description}
    for key, value in (
        ("embedding_model", embedding_model),
        ("chunk_size", chunk_size),
        ("chunk_overlap", chunk_overlap),
    ):
        if value is not None:
            body[key] = value
    c = _req("POST", "/v1/collections", json=body)
    if json_out:
        return _print_json(c)
    out.print(
        f"created [bold]{escape(c['name'])}[/] ({c['embedding_model']}, {c['dimension']} dims, "
        f"chunks of {c['chunk_size']} tokens, overlap {c['chunk_overlap']})"
    )
    return None


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """List collections with their model, documents and chunks."""
    rows = _req("GET", "/v1/collections")["data"]
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no collections yet (herald rag create NAME)")
        return None
    cols = [
        Col("name", copy=True),
        Col("embedding model", min=12),
        Col("dims", min=3, hide=2),
        Col("chunking", min=5, hide=1),
        Col("documents", min=3),
        Col("chunks", min=3),
        Col("status", min=6),
        Col("updated", hide=3),
    ]
    table = [
        [
            c["name"],
            c["embedding_model"],
            str(c["dimension"]),
            f"{c['chunk_size']}/{c['chunk_overlap']}",
            str(c["documents"]),
            str(c["chunks"]),
            c["status"],
            when(c["updated_at"]),
        ]
        for c in rows
    ]
    print_table(out, err, cols, table)
    return None


@app.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Collection to delete.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a collection and all its chunks."""
    if not yes and not typer.confirm(f"delete collection {name!r} and all its chunks?"):
        raise typer.Exit(1)
    _req("DELETE", f"/v1/collections/{_seg(name)}")
    out.print(f"deleted collection {escape(name)}")


def _local(source: str) -> Path | None:
    """The local file or folder ``source`` names (None for a URL the server fetches)."""
    if "://" in source and not source.startswith("file://"):
        return None
    path = Path(source.removeprefix("file://")).expanduser()
    if not path.exists():
        _fail(f"no such file or folder: {source}")
    return path.resolve()


def _follow(c: Any, correlationid: str, after: int, timeout: float, quiet: bool) -> Any:
    deadline = time.monotonic() + timeout
    types = ["documents.ingested", "job.failed", "job.progressed", "job.cancelled"]
    with Progress(
        TextColumn("[bold]ingesting"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        disable=quiet,
    ) as bar:
        task = bar.add_task("waiting for a worker…", total=1.0)
        while time.monotonic() < deadline:
            for e in c.messages(type=types, correlationid=correlationid, after=after):
                after = max(after, e.seq or after)
                if e.type == "job.progressed":
                    bar.update(
                        task,
                        completed=e.data.get("progress") or 0.0,
                        description=escape(str(e.data.get("message") or ""))[-60:],
                    )
                elif e.type == "documents.ingested" or e.type == "job.cancelled":
                    bar.update(task, completed=1.0)
                    return e
                elif not e.data.get("will_retry"):
                    return e
            time.sleep(0.3)
    return None


def _report(d: dict[str, Any]) -> None:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(d.get("counts", {}).items()))
    out.print(
        f"[bold green]{escape(d['collection'])}[/]: {d['files']} files ({counts}); "
        f"{d['documents']} documents, {d['chunks']} chunks in {d.get('duration_s', 0):.1f} s"
    )
    bad = [i for i in d.get("items", []) if i["status"] in ("failed", "empty", "unsupported")]
    for i in bad:
        out.print(
            f"  [yellow]{i['status']}[/] {escape(i['source'])}: {escape(i.get('error') or '')}"
        )
    if d.get("pii"):
        out.print("  PII redacted: " + ", ".join(f"{k} {v}" for k, v in d["pii"].items()))
    if d.get("deleted"):
        out.print(f"  pruned {len(d['deleted'])} documents no longer in the source")


@app.command("ingest")
def ingest(
    source: Annotated[str, typer.Argument(help="File, folder or fsspec URL (s3://…).")],
    collection: CollectionOpt,
    meta: Annotated[
        list[str] | None, typer.Option("--meta", help="key=value on every chunk (repeatable).")
    ] = None,
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="Redact PII first.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive")] = True,
    force: Annotated[bool, typer.Option("--force", help="Re-embed unchanged files too.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Delete documents no longer under SOURCE.")
    ] = False,
    create: Annotated[
        bool,
        typer.Option("--create/--no-create", help="Create a missing collection with defaults."),
    ] = True,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the result.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 1800.0,
    upload: Annotated[
        bool | None,
        typer.Option(
            "--upload/--no-upload",
            help="Send a local file/folder's content to the server (default: only when the "
            "server is remote or may not read the path).",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Ingest documents into a collection (documents.ingest.requested → rag.ingest job)."""
    local = _local(source)
    body = {
        "source": source,
        "metadata": _kv(meta, "--meta"),
        "redact_pii": redact_pii,
        "recursive": recursive,
        "force": force,
        "prune": prune,
    }
    c = _client()
    url = f"/v1/collections/{_seg(collection)}/documents"

    def publish(src: str) -> Any:
        try:
            return c._request("POST", url, json={**body, "source": src})
        except HeraldError as exc:
            if not create or exc.status != 404:
                raise
            col = c._request("POST", "/v1/collections", json={"name": collection})
            if not json_out:
                err.print(
                    f"created collection {escape(collection)} ({col['embedding_model']}, "
                    f"{col['dimension']} dims)"
                )
            return c._request("POST", url, json={**body, "source": src})

    try:
        if local is None:
            env = publish(source)
        else:
            env = send_local(c, local, publish, kind="rag", mode=upload, recursive=recursive)
        if not wait:
            if json_out:
                return _print_json(env)
            out.print(f"published {env['id']} (flow {env['correlationid']})")
            return None
        result = _follow(c, env["correlationid"], env.get("seq") or 0, timeout, json_out)
    except HeraldError as exc:
        _fail(exc.message)
    finally:
        c.close()
    if result is None:
        _fail(
            f"no result within {timeout:g} s; follow it with: "
            f"herald events --follow --correlation-id {env['correlationid']}"
        )
    if result.type != "documents.ingested":
        _fail(f"ingestion failed: {result.data.get('error') or result.data.get('reason')}")
    if json_out:
        return _print_json(result.data)
    _report(result.data)
    return None


@app.command("query")
def query(
    text: Annotated[str, typer.Argument(help="The question or search text.")],
    collection: CollectionOpt,
    k: Annotated[int, typer.Option("-k", help="Number of chunks.")] = 5,
    mode: Annotated[str, typer.Option(help="dense, keyword or hybrid.")] = "hybrid",
    where: Annotated[
        str | None,
        typer.Option("--filter", help='Metadata filter JSON, e.g. {"page": {"$gte": 2}}'),
    ] = None,
    mmr: Annotated[bool, typer.Option("--mmr", help="Diversify results (MMR).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Retrieve the chunks that best match TEXT."""
    body: dict[str, Any] = {"query": text, "k": k, "mode": mode, "mmr": mmr}
    if where:
        try:
            body["filters"] = json.loads(where)
        except json.JSONDecodeError as exc:
            _fail(f"--filter is not valid JSON: {exc}")
    rows = _req("POST", f"/v1/collections/{_seg(collection)}/query", json=body)["data"]
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print("no matching chunks")
        return None
    for n, h in enumerate(rows, 1):
        where_ = h["metadata"].get("filename") or h["source"]
        page = f" p.{h['page']}" if h.get("page") else ""
        out.print(f"[bold][{n}][/] {h['score']:.4f}  [cyan]{escape(str(where_))}{page}[/]")
        snippet = " ".join(h["text"].split())
        out.print("    " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")))
    return None


@app.command("docs")
def docs(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    delete_ids: Annotated[
        list[str] | None,
        typer.Option("--delete", help="Delete this ref_doc_id and all its chunks (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List a collection's documents, or delete some with --delete REF_DOC_ID."""
    if delete_ids:
        res = _req(
            "DELETE",
            f"/v1/collections/{_seg(collection)}/documents",
            params={"ref_doc_id": delete_ids},
        )
        if json_out:
            return _print_json(res)
        out.print(f"deleted {res['documents']} documents ({res['chunks']} chunks)")
        return None
    rows = _req("GET", f"/v1/collections/{_seg(collection)}/documents")["data"]
    if json_out:
        return _print_json(rows)
    if not rows:
        out.print(f"no documents in {escape(collection)} (herald rag ingest PATH -c {collection})")
        return None
    cols = [
        Col("ref_doc_id", copy=True),  # whole: --delete takes it
        Col("title", min=16),
        Col("chunks", min=3),
        Col("sha256", hide=1),  # 12 characters; --json has it whole
        Col("updated", hide=2),
    ]
    table = [
        [
            d["ref_doc_id"],
            d["title"],
            str(d["chunks"]),
            d["content_hash"][:12],
            when(d["updated_at"]),
        ]
        for d in rows
    ]
    print_table(out, err, cols, table)
    return None


@app.command("reindex")
def reindex(
    name: Annotated[str, typer.Argument(help="Collection to re-embed.")],
    embedding_model: Annotated[str | None, typer.Option(help="New embedding model.")] = None,
) -> None:
    """Re-embed a collection (collection.reindex.requested → rag.reindex job)."""
    body = {"embedding_model": embedding_model} if embedding_model else {}
    env = _req("POST", f"/v1/collections/{_seg(name)}/reindex", json=body)
    out.print(f"published {env['id']} (flow {env['correlationid']})")
