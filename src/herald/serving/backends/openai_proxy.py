"""Proxy to any OpenAI-compatible upstream (OpenAI, vLLM, llama.cpp server, another Herald).

Chats are forwarded as messages (the upstream applies its own template) and completions as
prompts; streams are relayed token by token (``stream=true`` upstream, with usage). Upstream
errors keep their status and message. Options: ``base_url`` (required, e.g.
``http://gpu-box:8000/v1``), ``api_key`` or ``api_key_env`` (name of an environment variable),
``timeout`` (s, default 600), ``context_length`` (for /v1/models only).

``api_key``/``api_key_env`` are operator options (``serving.models`` in herald.yaml). A
deployment made through the API or a message names an operator-defined secret instead
(``api_key_secret``, sent only to its hosts) and its ``base_url`` obeys the egress policy
(:meth:`herald.serving.deployments.DeploymentManager.check_targets`).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

import httpx

from herald.errors import ConfigurationError
from herald.serving.backends.base import (
    Backend,
    Capability,
    ChatPrompt,
    Delta,
    Embeddings,
    GenerationRequest,
    Prompt,
    TokenLogprob,
    Usage,
)
from herald.serving.errors import (
    BadParameter,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    ServingError,
)


class OpenAIProxyBackend(Backend):
    name = "openai"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat", "completions", "embeddings"})
    max_concurrency = 64

    def __init__(self, model: str, **options: Any) -> None:
        super().__init__(model, **options)
        base_url = options.get("base_url")
        if not base_url:
            raise ConfigurationError(
                "the openai backend needs options.base_url (e.g. http://host:8000/v1)"
            )
        self.base_url = str(base_url).rstrip("/")
        key = options.get("api_key")
        if key is None and options.get("api_key_env"):
            key = os.environ.get(str(options["api_key_env"]))
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_concurrency = int(options.get("max_concurrency", 64))
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=float(options.get("timeout", 600)),
            transport=options.get("transport"),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def health(self) -> bool:
        try:
            return (await self.http.get("/models", timeout=5)).status_code == 200
        except httpx.HTTPError:
            return False

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "upstream": self.base_url}

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        return ChatPrompt("", "upstream", messages)

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": p.temperature,
            "top_p": p.top_p,
        }
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if p.presence_penalty:
            body["presence_penalty"] = p.presence_penalty
        if p.frequency_penalty:
            body["frequency_penalty"] = p.frequency_penalty
        chat = request.messages is not None
        if chat:
            body["messages"] = request.messages
            if p.logprobs is not None:
                body["logprobs"] = True
                body["top_logprobs"] = p.logprobs
        else:
            body["prompt"] = request.prompt
            if p.logprobs is not None:
                body["logprobs"] = p.logprobs
        path = "/chat/completions" if chat else "/completions"
        finish: str | None = None
        usage: Usage | None = None
        try:
            async with self.http.stream("POST", path, json=body) as r:
                if r.status_code >= 400:
                    await r.aread()
                    raise upstream_error(r)
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise ServingError(f"upstream error: {chunk['error'].get('message')}")
                    if chunk.get("usage"):
                        u = chunk["usage"]
                        usage = Usage(u.get("prompt_tokens", 0), u.get("completion_tokens", 0))
                    for c in chunk.get("choices") or []:
                        text = (c.get("delta") or {}).get("content") if chat else c.get("text")
                        lps = _logprobs(c.get("logprobs"), chat)
                        finish = c.get("finish_reason") or finish
                        if text or lps:
                            yield Delta(text or "", lps)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"upstream {self.base_url} failed: {exc}") from exc
        yield Delta(finish_reason=finish or "stop", usage=usage or Usage(0, 0))

    async def prompt_logprobs(self, prompt: Prompt, top: int) -> list[TokenLogprob]:
        body = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": 1,
            "echo": True,
            "logprobs": top,
            "temperature": 0,
        }
        data = await self._post("/completions", body)
        lp = data["choices"][0].get("logprobs") or {}
        items = _logprobs(lp, False)
        return items[: max(len(items) - 1, 0)]  # drop the one generated token

    async def embed(self, inputs: Sequence[str | list[int]]) -> Embeddings:
        data = await self._post(
            "/embeddings", {"model": self.model, "input": list(inputs), "encoding_format": "float"}
        )
        vectors = [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]
        return Embeddings(vectors, int((data.get("usage") or {}).get("prompt_tokens", 0)))

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            r = await self.http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"upstream {self.base_url} failed: {exc}") from exc
        if r.status_code >= 400:
            raise upstream_error(r)
        out: dict[str, Any] = r.json()
        return out


def _logprobs(raw: dict[str, Any] | None, chat: bool) -> list[TokenLogprob]:
    if not raw:
        return []
    if chat:
        return [
            TokenLogprob(
                c["token"],
                c.get("logprob"),
                {t["token"]: t["logprob"] for t in c.get("top_logprobs") or []},
            )
            for c in raw.get("content") or []
        ]
    tops = raw.get("top_logprobs") or []
    return [
        TokenLogprob(t, lp, (tops[i] if i < len(tops) and tops[i] else {}))
        for i, (t, lp) in enumerate(
            zip(raw.get("tokens", []), raw.get("token_logprobs", []), strict=False)
        )
    ]


def upstream_error(r: httpx.Response) -> ServingError:
    try:
        err = r.json().get("error") or {}
    except ValueError:
        err = {}
    msg = f"upstream: {err.get('message') or r.text[:500] or r.reason_phrase}"
    param = err.get("param")
    if r.status_code == 404:
        return ModelNotFound(msg, param=param or "model")
    if r.status_code in (400, 422):
        return BadParameter(msg, param=param, code=err.get("code") or "invalid_parameter")
    if r.status_code == 429:
        return Overloaded(msg, headers={"Retry-After": r.headers.get("retry-after", "1")})
    return ModelUnavailable(msg)
