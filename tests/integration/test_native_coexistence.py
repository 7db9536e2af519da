"""usearch (the embedded vector store) and llama.cpp (the GGUF backend) in one process.

usearch's wheel exports libstdc++'s locale facet ids as GNU unique symbols; imported first, it
used to make every later llama.cpp load fail with std::bad_cast ("Failed to load model from
file"). herald.rag.vectorstores._cxx pins the system classic locale before usearch loads.
Each case runs in a fresh interpreter: the import order is the thing under test.
"""

from __future__ import annotations

import subprocess
import sys

LOAD = """
import llama_cpp
from herald.models.bundled import bundled_gguf
for _ in range(2):
    llama_cpp.Llama(model_path=str(bundled_gguf()), n_ctx=128, verbose=False)
print("loaded")
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_llamacpp_loads_after_the_vector_store_was_imported() -> None:
    r = run("import herald.rag.vectorstores.local\n" + LOAD)
    assert r.returncode == 0 and "loaded" in r.stdout, r.stderr[-2000:]
