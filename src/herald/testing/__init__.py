"""Contract kits for Herald's ports, shipped in the package so adapter authors can run them.

Each kit is a class of test methods that a test module subclasses, providing one fixture that
opens the adapter under test (eventsourcing's recorder test cases, fsspec's abstract tests)::

    import pytest
    from herald.testing import EventLogContract

    class TestMyLog(EventLogContract):
        @pytest.fixture
        def make_log(self, tmp_path):
            return lambda: MyEventLog(f"mylog://{tmp_path}")

========================  ==========================================  ======================
kit                       port                                        fixture the subclass gives
========================  ==========================================  ======================
EventLogContract          herald.bus.base.EventLog                    ``make_log``
ArtifactStoreContract     herald.artifacts.base.ArtifactStore         ``store`` (+ ``tamper``)
VectorStoreContract       herald.rag.vectorstores.base.VectorStore    ``make_store``
EmbedderContract          herald.rag.embeddings.base.Embedder         ``embedder``
ServingBackendContract    herald.serving.backends.base.Backend        ``make_backend`` (class)
ExecutorContract          herald.jobs.executors.base.Executor         ``make_executor``
EngineContract            herald.evaluation.base.Engine               ``engine`` + ``cases``
========================  ==========================================  ======================

Where adapters legitimately differ, a kit has declared capability flags (class attributes)
that switch a check to the documented alternative, never a silent skip.

The kits need **pytest** (>= 8) and nothing else: async checks run on an event loop the kit
owns, so pytest-asyncio is not required. ``import herald`` never imports this package, so
pytest stays a test-only dependency. Add ``pytest.register_assert_rewrite("herald.testing")``
to your ``conftest.py`` for detailed assertion messages. See ``docs/guides/adapters.md``.
"""

from herald.testing.artifacts import ArtifactStoreContract
from herald.testing.embeddings import EmbedderContract
from herald.testing.evaluation import EngineCase, EngineContract, TargetFactory, case, generation
from herald.testing.eventlog import EventLogContract, LogFactory
from herald.testing.executors import ExecutorContract, ExecutorFactory
from herald.testing.jobs import KIT_PLUGIN
from herald.testing.serving import BackendFactory, ServingBackendContract
from herald.testing.vectorstores import StoreFactory, VectorStoreContract

__all__ = [
    "KIT_PLUGIN",
    "ArtifactStoreContract",
    "BackendFactory",
    "EmbedderContract",
    "EngineCase",
    "EngineContract",
    "EventLogContract",
    "ExecutorContract",
    "ExecutorFactory",
    "LogFactory",
    "ServingBackendContract",
    "StoreFactory",
    "TargetFactory",
    "VectorStoreContract",
    "case",
    "generation",
]
