"""herald.testing as a third party uses it: importable without Herald's tests/, pytest-only,
curated, and failing on an adapter that breaks the contract."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import herald.testing

BROKEN_ADAPTERS = """
import pytest
from herald.testing import EmbedderContract, EngineCase, EngineContract, case
from herald.evaluation.engines.format import FormatEngine
from herald.rag.embeddings.hashing import HashingEmbedder


class Unnormalised(HashingEmbedder):  # vectors not of unit length, batch order reversed
    def embed(self, texts):
        return [[2 * x for x in v] for v in super().embed(texts)][::-1]


class Sloppy(FormatEngine):  # an undeclared metric; a KeyError instead of ItemError
    async def score(self, item):
        if not item.sample.checks:
            raise KeyError("checks")
        return {**await super().score(item), "undeclared": 1.0}


class TestUnnormalised(EmbedderContract):
    @pytest.fixture
    def embedder(self):
        return Unnormalised(16)


class TestSloppy(EngineContract):
    @pytest.fixture
    def engine(self):
        return Sloppy([], {})

    @pytest.fixture
    def cases(self):
        return [case("q", "{}", checks={"json": True})]

    @pytest.fixture
    def unscorable(self):
        return [case("q", "a")]
"""


def test_import_herald_loads_neither_pytest_nor_the_kits() -> None:
    code = (
        "import sys, herald, herald.bus, herald.rag.vectorstores, herald.serving.backends\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytest', '_pytest')"
        " or m.startswith('herald.testing')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_curated() -> None:
    public = {n for n in dir(herald.testing) if n[0] not in "_@"}  # @: pytest's rewriting
    modules = {"artifacts", "embeddings", "evaluation", "eventlog", "executors", "jobs"}
    modules |= {"serving", "vectorstores"}
    assert public - modules == set(herald.testing.__all__)


def test_a_broken_adapter_fails_its_kit_outside_herald_tests(tmp_path: Path) -> None:
    """Run as a third party would: its own folder, no Herald conftest or pytest config, no
    pytest-asyncio; the kits report each broken promise as a failure."""
    (tmp_path / "conftest.py").write_text(
        'import pytest\npytest.register_assert_rewrite("herald.testing")\n'
    )
    (tmp_path / "test_acme.py").write_text(textwrap.dedent(BROKEN_ADAPTERS))
    out = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"),
            *("-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    failed = {
        line.split("::")[-1].split(" ")[0]
        for line in out.stdout.splitlines()
        if line.startswith("FAILED")
    }
    assert failed == {
        "test_one_unit_vector_per_text_in_order",
        "test_batching_does_not_change_vectors",
        "test_query_vectors_share_the_space",
        "test_scores_are_floats_of_the_declared_metrics",
        "test_unscorable_items_raise_item_error",
    }, out.stdout[-3000:]
    assert "assert" in out.stdout  # rewritten asserts show what was compared
