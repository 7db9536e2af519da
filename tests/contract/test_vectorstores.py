"""The vector-store kit (herald.testing.VectorStoreContract) over every built-in adapter:
memory, local (usearch HNSW + SQLite) and pgvector."""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.rag.vectorstores import open_vector_store
from herald.testing import StoreFactory, VectorStoreContract


class TestMemoryStore(VectorStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: open_vector_store(f"memory://{tmp_path.name}", cached=False)


class TestLocalStore(VectorStoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: open_vector_store(f"local://{tmp_path / 'vs'}", cached=False)


@pytest.mark.postgres
class TestPgVectorStore(VectorStoreContract):
    @pytest.fixture
    def make_store(self, fresh_postgres_url: str) -> StoreFactory:
        return lambda: open_vector_store(fresh_postgres_url, cached=False)
