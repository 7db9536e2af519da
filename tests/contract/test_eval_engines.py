"""The evaluation-engine kit (herald.testing.EngineContract) over the built-in item engines:
reference (generation metrics; multiple choice and perplexity through Herald's gateway on the
fake backend), format, safety, performance, rag (lexical) and judge (rubric, against an
in-process double of a judge's /v1/chat/completions). lm-eval, the batch engine, has its own
integration tests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from herald.evaluation.base import Engine, create_engine
from herald.evaluation.suites import Sample
from herald.evaluation.targets import OpenAIClient
from herald.testing import EngineCase, EngineContract, TargetFactory, case, generation


class TestReferenceEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        metrics = ["exact_match", "normalized_match", "contains", "f1", "rouge_l", "regex"]
        return create_engine("reference", [*metrics, "bleu", "chrf"], {})

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        return [
            case("Capital of France?", "Paris", reference="Paris", checks={"regex": "^Par"}),
            case("2 + 3?", "The answer is 5.", reference=["5", "five"], checks={"regex": r"\d"}),
            case("Colour of the sky?", "green", reference="blue", checks={"regex": "blue"}),
        ]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return [case("No reference given", "anything")]


class TestFormatEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine("format", [], {})

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        return [
            case("JSON please", '{"a": 1}', checks={"json": True}),
            case("JSON please", "not json", checks={"json": True, "min_words": 1}),
            case("Name a city", "Paris is nice", checks={"keywords": ["paris"], "max_words": 2}),
        ]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return [case("No checks at all", "anything")]


class TestSafetyEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine("safety", [], {"blocked_terms": ["darn"]})

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        return [
            case("Contact?", "Write to jane.doe@example.com"),
            case("Secret?", "The code is hunter2", metadata={"secrets": ["hunter2"]}),
            case("Mood?", "Darn, that is annoying."),
            case("Weather?", "It is sunny today."),
        ]


class TestPerformanceEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine(
            "performance",
            ["latency_s", "ttft_s", "tokens_per_s", "completion_tokens", "cost_per_1k_tokens"],
            {"price_per_1k_prompt": 0.5, "price_per_1k_completion": 1.5},
        )

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        streamed = case("Hi", None)
        one_chunk = case("Hi", None)
        return [
            EngineCase(streamed.sample, generation("Hello there", latency_s=0.4, ttft_s=0.1)),
            EngineCase(
                one_chunk.sample, generation("Hello", latency_s=0.2, ttft_s=0.2, content_chunks=1)
            ),
        ]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        c = case("Hi", None)
        return [EngineCase(c.sample, generation("x", prompt_tokens=None, completion_tokens=None))]


class TestRagEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine("rag", [], {"method": "lexical"})

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        contexts = ["Employees get 27 vacation days a year.", "Laptops are replaced yearly."]
        return [
            case(
                "How many vacation days do employees get?",
                "Employees get 27 vacation days.",
                reference="27 vacation days a year",
                contexts=contexts,
            ),
            case(
                "Who replaces laptops?",
                "Bananas are yellow.",
                reference="the IT team replaces laptops",
                contexts=contexts,
            ),
        ]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return [case("No contexts and no collection", "anything", reference="x")]


def judge_wire() -> httpx.MockTransport:
    """A judge model as an OpenAI-compatible server answers: 'Score: N' from the answer's
    length, or text that is no score when the answer asks for it."""

    def handler(request: httpx.Request) -> httpx.Response:
        prompt = json.loads(request.content)["messages"][-1]["content"]
        answer = prompt.split("Answer to grade:\n", 1)[1].split("\n\n", 1)[0]
        reply = "I cannot say." if "UNGRADABLE" in answer else f"Score: {min(len(answer), 5)}"
        return httpx.Response(
            200,
            json={
                "id": "j",
                "object": "chat.completion",
                "model": "judge",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            },
        )

    return httpx.MockTransport(handler)


class TestJudgeEngine(EngineContract):
    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine("judge", [], {"judge": "judge-target"})

    @pytest.fixture
    def make_target(self) -> TargetFactory:
        return lambda: OpenAIClient("http://judge.test/v1", "judge", transport=judge_wire())

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        return [case("Say hi", "Hello!", reference="Hi"), case("Say hi", "Yo")]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return [case("Say hi", "UNGRADABLE")]


@pytest.fixture(scope="module")
def fake_gateway() -> Iterator[str]:
    """Herald's own OpenAI gateway over the fake backend, on a loopback port (the evaluation
    runner's in-process gateway): /v1/completions with echo and logprobs, the real path."""
    from herald.evaluation.targets import InProcessGateway
    from herald.serving.pool import ModelPool, ModelSpec

    gateway = InProcessGateway(ModelPool([ModelSpec("fake", "fake", "fake-model")]))
    try:
        yield gateway.start()
    finally:
        gateway.stop()


class TestReferenceLoglikEngine(EngineContract):
    """Multiple choice and perplexity, scored by log-likelihood through the target."""

    @pytest.fixture
    def engine(self) -> Engine:
        return create_engine("reference", ["mc_accuracy", "mc_accuracy_norm", "perplexity"], {})

    @pytest.fixture
    def make_target(self, fake_gateway: str) -> TargetFactory:
        return lambda: OpenAIClient(fake_gateway, "fake")

    @pytest.fixture
    def cases(self) -> list[EngineCase]:
        def mc(i: int, prompt: str, choices: list[str], text: str) -> EngineCase:
            s = Sample(id=f"mc-{i}", prompt=prompt, choices=choices, answer=0, text=text)
            return EngineCase(s, None)

        return [
            mc(1, "The capital of France is", ["Paris", "Rome", "a large city"], "Paris is big."),
            mc(2, "2 + 3 =", ["5", "six"], "Two and three make five."),
        ]

    @pytest.fixture
    def unscorable(self) -> list[EngineCase]:
        return [EngineCase(Sample(id="no-choices", prompt="Pick one", text="x"), None)]
