"""Extension seams around every data-plane request (guardrails and monitoring plug in here).

* ``before_request(ctx, body)`` — may raise a :class:`~herald.serving.errors.ServingError` to
  refuse a request, or change ``body`` (a dict of the parsed request) in place;
* ``on_stream_delta(ctx, index, text) -> text`` — may rewrite each generated text piece (also
  for non-streamed responses, which are assembled from the same pieces);
* ``on_stream_end(ctx, index) -> text`` — text to append to a choice's last piece (flushes
  what ``on_stream_delta`` held back, e.g. a possible PII string split over two pieces);
* ``after_response(ctx, body)`` — sees (and may change) the final response dict;
* ``on_request_log(record)`` — one :class:`RequestRecord` per finished request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("herald.serving")


@dataclass
class RequestContext:
    request_id: str
    endpoint: str  # "chat" | "completions" | "embeddings"
    model: str
    user: str | None = None
    version: str = ""  # registry version served (for deployments), "" if none
    headers: dict[str, str] = field(default_factory=dict)  # added to the HTTP response
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestRecord:
    request_id: str
    endpoint: str
    model: str
    version: str
    backend: str
    status: int
    latency_s: float
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    stream: bool = False
    error: str | None = None
    user: str | None = None


BeforeRequest = Callable[[RequestContext, dict[str, Any]], Awaitable[None]]
AfterResponse = Callable[[RequestContext, dict[str, Any]], Awaitable[None]]
OnStreamDelta = Callable[[RequestContext, int, str], str]
OnRequestLog = Callable[[RequestRecord], None]
OnStreamEnd = Callable[[RequestContext, int], str]


@dataclass
class Hooks:
    before_request: list[BeforeRequest] = field(default_factory=list)
    on_stream_delta: list[OnStreamDelta] = field(default_factory=list)
    after_response: list[AfterResponse] = field(default_factory=list)
    on_request_log: list[OnRequestLog] = field(default_factory=list)
    on_stream_end: list[OnStreamEnd] = field(default_factory=list)

    async def run_before(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        for hook in self.before_request:
            await hook(ctx, body)

    def run_delta(self, ctx: RequestContext, index: int, text: str) -> str:
        for hook in self.on_stream_delta:
            text = hook(ctx, index, text)
        return text

    def run_end(self, ctx: RequestContext, index: int) -> str:
        out = ""
        for hook in self.on_stream_end:
            out += hook(ctx, index)
        return out

    async def run_after(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        for hook in self.after_response:
            await hook(ctx, body)

    def record(self, rec: RequestRecord) -> None:
        for hook in self.on_request_log:
            try:
                hook(rec)
            except Exception:  # a monitoring hook must never fail a request
                log.exception("request-log hook failed")
