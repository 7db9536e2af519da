"""Prometheus metrics of the data plane, named like vLLM's (``vllm:`` → ``herald:``).

| Herald                                   | vLLM                                   |
| ---------------------------------------- | -------------------------------------- |
| ``herald:time_to_first_token_seconds``   | ``vllm:time_to_first_token_seconds``   |
| ``herald:inter_token_latency_seconds``   | ``vllm:inter_token_latency_seconds``   |
| ``herald:e2e_request_latency_seconds``   | ``vllm:e2e_request_latency_seconds``   |
| ``herald:prompt_tokens_total``           | ``vllm:prompt_tokens_total``           |
| ``herald:generation_tokens_total``       | ``vllm:generation_tokens_total``       |
| ``herald:request_success_total``         | ``vllm:request_success_total``         |
| ``herald:num_requests_running``          | ``vllm:num_requests_running``          |
| ``herald:num_requests_waiting``          | ``vllm:num_requests_waiting``          |
| ``herald:request_errors_total``          | (none: failed/rejected requests by HTTP status) |

Labels: ``model_name`` (the public name) everywhere, plus ``version`` (registry version or "")
so a deployment's versions can be compared; ``finished_reason`` on successes, ``status`` on errors.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0)
ITL_BUCKETS = (0.001, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5)
E2E_BUCKETS = (0.01, 0.05, 0.1, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0)
LABELS = ["model_name", "version"]


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.registry = r
        self.ttft = Histogram(
            "herald:time_to_first_token_seconds",
            "Time from request arrival to the first generated token",
            LABELS,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "herald:inter_token_latency_seconds",
            "Time between consecutive streamed tokens",
            LABELS,
            buckets=ITL_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "herald:e2e_request_latency_seconds",
            "Time from request arrival to its last byte",
            LABELS,
            buckets=E2E_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "herald:prompt_tokens", "Prompt tokens processed", LABELS, registry=r
        )
        self.generation_tokens = Counter(
            "herald:generation_tokens", "Tokens generated", LABELS, registry=r
        )
        self.success = Counter(
            "herald:request_success",
            "Requests finished, by finish reason",
            [*LABELS, "finished_reason"],
            registry=r,
        )
        self.errors = Counter(
            "herald:request_errors",
            "Requests that failed or were refused, by HTTP status",
            [*LABELS, "status"],
            registry=r,
        )
        self.running = Gauge(
            "herald:num_requests_running", "Requests being generated", LABELS, registry=r
        )
        self.waiting = Gauge(
            "herald:num_requests_waiting", "Requests queued for a backend", LABELS, registry=r
        )
        self.loads = Counter(
            "herald_serving_model_loads",
            "Models loaded into the pool",
            ["model_name", "backend"],
            registry=r,
        )
        self.load_seconds = Histogram(
            "herald_serving_model_load_seconds",
            "Time to load a model into the pool",
            ["model_name", "backend"],
            buckets=E2E_BUCKETS,
            registry=r,
        )
