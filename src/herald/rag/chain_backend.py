"""RAG chains served as OpenAI models: ``rag/<collection>@<model>``.

:meth:`RagChains.install` adds to a :class:`~herald.serving.pool.ModelPool`:

* a router that answers ``rag/<collection>@<model>`` with a chain replica (404
  ``collection_not_found`` for a missing collection, 404 ``model_not_found`` for an unknown
  inner model — both before any generation);
* hooks: ``before_request`` keeps the request's ``rag`` options (``template``, ``k``, ``mode``,
  ``filters``) and context; ``after_response`` adds ``citations`` to a chat completion;
  ``on_request_log`` forgets the request;
* a lister showing ``rag/<collection>@<model>`` for every collection and served chat model.

The chain backend rewrites the query from the conversation, retrieves (in a thread), packs
numbered passages into the inner model's context window (tokens counted with its tokenizer) and
streams the inner model's answer through the inner replica's admission control. Citations come
back as the ``citations`` field of a non-streamed response, in the ``x-herald-rag-citations``
header (JSON, both modes) and, with ``sources_footer``, as a "Sources:" list at the end of the
answer text (the final chunk of a stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from herald.errors import HeraldError
from herald.rag.chains import (
    ChainError,
    ChainTemplate,
    Citation,
    Packed,
    load_template,
    mark_cited,
    pack,
    rewrite_query,
    sources_footer,
)
from herald.rag.errors import CollectionNotFound
from herald.serving.backends.base import (
    Backend,
    Capability,
    ChatPrompt,
    Delta,
    GenerationRequest,
)
from herald.serving.chat.protocol import ChatCompletionResponse
from herald.serving.errors import BadParameter, ModelNotFound, ServingError
from herald.serving.hooks import RequestContext, RequestRecord
from herald.serving.pool import ModelPool, ModelSpec, Replica

if TYPE_CHECKING:
    from herald.prompts.store import PromptVersion
    from herald.rag.service import RagService

log = logging.getLogger("herald.rag")
PREFIX = "rag/"
CITATIONS_HEADER = "x-herald-rag-citations"
_REQUEST_OPTIONS = ("template", "k", "mode", "filters", "sources_footer")


class ChainCollectionNotFound(ModelNotFound):
    code = "collection_not_found"


class ChainBadRequest(BadParameter):
    code = "rag_chain_error"


def parse_model(model: str) -> tuple[str, str] | None:
    """``rag/<collection>@<model>`` → (collection, model); None for other names."""
    if not model.startswith(PREFIX):
        return None
    rest = model[len(PREFIX) :]
    collection, sep, inner = rest.partition("@")
    if not sep or not collection or not inner:
        raise ModelNotFound(
            f"RAG models are named rag/<collection>@<model> "
            f"(e.g. rag/handbook@smollm2-135m-instruct), got {model!r}",
            param="model",
        )
    return collection, inner


@dataclass
class _Pending:
    ctx: RequestContext
    options: dict[str, Any]
    packed: Packed | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RagChains:
    """The chain router, hooks and lister of one pool.

    ``rag`` gives the RAG service (a Herald passes ``lambda: services.rag``: opened on the first
    chain request); ``prompts`` resolves a ``prompts:/…`` template reference (a Herald's
    shared prompt registry; default: the prompt file of the RAG service's home)."""

    def __init__(
        self,
        pool: ModelPool,
        rag: Callable[[], RagService],
        *,
        prompts: Callable[[str], PromptVersion] | None = None,
        template_dirs: list[Path] | None = None,
    ) -> None:
        self.pool = pool
        self.rag = rag
        self._prompts = prompts
        self._template_dirs = template_dirs
        self._pending: dict[str, _Pending] = {}
        self._backends: dict[str, ChainBackend] = {}

    @classmethod
    def install(
        cls,
        pool: ModelPool,
        rag: Callable[[], RagService],
        *,
        prompts: Callable[[str], PromptVersion] | None = None,
        template_dirs: list[Path] | None = None,
    ) -> RagChains:
        chains = cls(pool, rag, prompts=prompts, template_dirs=template_dirs)
        pool.add_router(chains.route)
        pool.hooks.before_request.append(chains.before_request)
        pool.hooks.after_response.append(chains.after_response)
        pool.hooks.on_request_log.append(chains.forget)
        pool.listers.append(chains.list_models)
        return chains

    def template_dirs(self) -> list[Path]:
        """Where ``<name>.yaml`` templates are looked up: the given folders, else
        ``$HERALD_HOME/rag/templates``."""
        if self._template_dirs is not None:
            return self._template_dirs
        return [Path(self.rag().home) / "rag" / "templates"]

    # router -------------------------------------------------------------------------------------
    async def route(self, model: str, user: str | None) -> Replica | None:
        parsed = parse_model(model)
        if parsed is None:
            return None
        collection, inner = parsed
        try:
            await asyncio.to_thread(lambda: self.rag().get_collection(collection))
        except CollectionNotFound as exc:
            raise ChainCollectionNotFound(
                f"{exc.message} (model {model!r})", param="model"
            ) from exc
        inner_replica = await self.pool.route(inner, user=user)  # 404 for an unknown model
        if "chat" not in inner_replica.backend.capabilities:
            raise BadParameter(f"model {inner!r} cannot chat; RAG needs a chat model")
        backend = self._backends.get(model)
        if backend is None:
            backend = self._backends[model] = ChainBackend(model, chains=self)
        spec = ModelSpec(model, "rag", inner, {}, inner, "", "router")
        return Replica(spec, backend, self.pool.max_queue)

    def list_models(self) -> list[ModelSpec]:
        try:
            names = [c.name for c in self.rag().list_collections()]
        except Exception:  # listing must never break /v1/models
            log.debug("listing collections for rag models failed", exc_info=True)
            return []
        chat = [s.name for s in self.pool.specs.values() if s.backend != "embeddings"]
        return [
            ModelSpec(f"{PREFIX}{c}@{m}", "rag", m, {}, m, "", "router")
            for c in names
            for m in chat
        ]

    # hooks --------------------------------------------------------------------------------------
    async def before_request(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        if not ctx.model.startswith(PREFIX):
            return
        if ctx.endpoint != "chat":
            raise BadParameter(
                "RAG models answer chat completions only (POST /v1/chat/completions)",
                param="model",
            )
        req = body.get("request")
        extra = getattr(req, "model_extra", None) or {}
        options = extra.get("rag") or {}
        if not isinstance(options, dict):
            raise ChainBadRequest("rag must be an object", param="rag")
        unknown = sorted(set(options) - set(_REQUEST_OPTIONS))
        if unknown:
            raise ChainBadRequest(
                f"unknown rag option(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(_REQUEST_OPTIONS)}",
                param="rag",
            )
        self._pending[ctx.request_id] = _Pending(ctx, dict(options))

    async def after_response(self, ctx: RequestContext, body: dict[str, Any]) -> None:
        pending = self._pending.pop(ctx.request_id, None)
        if pending is None or pending.packed is None:
            return
        resp = body["response"]
        footer = sources_footer(pending.packed.citations)
        answer = " ".join((c.message.content or "").replace(footer, "") for c in resp.choices)
        cites = mark_cited(pending.packed.citations, answer)
        body["response"] = RagChatCompletionResponse(
            **resp.model_dump(), citations=[c.to_dict() for c in cites]
        )

    def forget(self, record: RequestRecord) -> None:
        if record.stream or record.status != 200:  # else after_response (next) pops it
            self._pending.pop(record.request_id, None)

    # the chain ---------------------------------------------------------------------------------
    def template_for(self, collection: str, options: Mapping[str, Any]) -> ChainTemplate:
        dirs = self.template_dirs()
        name = options.get("template")
        if name is not None and not isinstance(name, str):
            raise ChainError("rag.template must be a template name")
        if name is None:  # a template named after the collection, else the default
            name = collection if any((d / f"{collection}.yaml").is_file() for d in dirs) else None
        if name is not None and name.startswith("prompts:/"):
            return self._prompt_template(name, collection).with_overrides(
                k=options.get("k"),
                mode=options.get("mode"),
                sources_footer=options.get("sources_footer"),
            )
        template = load_template(name or "default", dirs)
        return template.with_overrides(
            k=options.get("k"),
            mode=options.get("mode"),
            sources_footer=options.get("sources_footer"),
        )

    def _prompt_template(self, ref: str, collection: str) -> ChainTemplate:
        """The default template with its system prompt from the prompt registry; the prompt
        may use the variables ``collection`` and ``citation_instructions``."""
        if self._prompts is not None:
            prompt = self._prompts(ref)  # the store every role shares
        else:  # no Herald around: the home's own file
            from herald.prompts import open_prompt_store

            store = open_prompt_store(self.rag().home)
            try:
                prompt = store.get(ref)
            finally:
                store.close()
        base = ChainTemplate()
        offered = {"collection": collection, "citation_instructions": base.citation_instructions}
        unknown = sorted(set(prompt.variables) - set(offered))
        if unknown:
            raise ChainError(
                f"{prompt.uri} uses variable(s) {', '.join(unknown)}; a chain's system prompt "
                f"may use {', '.join(offered)}"
            )
        system = prompt.render({k: v for k, v in offered.items() if k in prompt.variables})
        return base.with_overrides(name=prompt.uri, system=system)

    async def prepare(self, model: str, request: GenerationRequest, inner: Backend) -> Packed:
        """Retrieve and pack once per request (``n`` choices share the passages)."""
        pending = self._pending.get(request.request_id)
        if pending is None:  # called outside the chat endpoint (no hooks ran)
            pending = self._pending[request.request_id] = _Pending(
                RequestContext(request.request_id, "chat", model), {}
            )
        async with pending.lock:
            if pending.packed is not None:
                return pending.packed
            parsed = parse_model(model)
            assert parsed is not None
            collection, _ = parsed
            messages = request.messages or []
            try:
                # prompt-template rendering and token counting are CPU work: off the loop
                template = await asyncio.to_thread(self.template_for, collection, pending.options)
                query = rewrite_query(messages)
                filters = pending.options.get("filters")
                chunks = await asyncio.to_thread(
                    lambda: self.rag().retrieve(
                        collection, query, k=template.k, mode=template.mode, filters=filters
                    )
                )
                budget = inner.context_length - (
                    request.params.max_tokens
                    if request.params.max_tokens is not None
                    else template.reserve_tokens
                )
                packed = await asyncio.to_thread(
                    lambda: pack(
                        template,
                        messages,
                        chunks,
                        lambda msgs: _count(inner, msgs),
                        budget,
                        collection=collection,
                    )
                )
            except CollectionNotFound as exc:
                raise ChainCollectionNotFound(exc.message, param="model") from exc
            except ServingError:
                raise
            except HeraldError as exc:
                raise ChainBadRequest(exc.message) from exc
            packed.extra["template"] = template
            packed.extra["query"] = query
            pending.packed = packed
            pending.ctx.headers[CITATIONS_HEADER] = json.dumps(
                [c.to_dict() for c in packed.citations], ensure_ascii=True, separators=(",", ":")
            )
            pending.ctx.headers["x-herald-rag-query"] = json.dumps(query, ensure_ascii=True)
            pending.ctx.extra["citations"] = [c.to_dict() for c in packed.citations]
            return packed


def _count(inner: Backend, messages: list[dict[str, Any]]) -> int:
    prompt = inner.chat_prompt(messages).prompt
    if isinstance(prompt, list):
        return len(prompt)
    try:
        return len(inner.tokenize(prompt))
    except HeraldError:  # a backend that cannot count (remote): ~4 characters a token
        return len(prompt) // 4 + 1


class ChainBackend(Backend):
    """A chain over an inner chat model; generation goes through the inner replica."""

    name = "rag"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({"chat"})
    max_concurrency = 1024  # the inner replica does the admission control

    def __init__(self, model: str, *, chains: RagChains) -> None:
        super().__init__(model)
        self.chains = chains
        parsed = parse_model(model)
        assert parsed is not None
        self.collection, self.inner = parsed

    def chat_prompt(self, messages: list[dict[str, Any]]) -> ChatPrompt:
        # the real prompt is built in generate() (retrieval is I/O); the chat travels along
        try:
            rewrite_query(messages)  # fail early (400) on a chat without a user question
        except ChainError as exc:
            raise ChainBadRequest(exc.message, param="messages") from exc
        return ChatPrompt("", "rag", messages=[dict(m) for m in messages])

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        replica = await self.chains.pool.route(self.inner)
        inner = replica.backend
        packed = await self.chains.prepare(self.model, request, inner)
        rendered = await asyncio.to_thread(inner.chat_prompt, packed.messages)
        inner_request = GenerationRequest(
            rendered.prompt, request.params, request.request_id, rendered.messages
        )
        template: ChainTemplate = packed.extra["template"]
        replica.admit()
        async with replica.slot():
            it = inner.generate(inner_request)
            try:
                async for d in it:
                    if d.finish_reason is not None and template.sources_footer:
                        d.text += sources_footer(packed.citations)
                    yield d
            finally:
                await it.aclose()  # type: ignore[attr-defined]


class RagChatCompletionResponse(ChatCompletionResponse):
    """A chat completion with the numbered passages the answer was given (``cited``: used)."""

    citations: list[dict[str, Any]] = Field(default_factory=list)


__all__ = [
    "CITATIONS_HEADER",
    "ChainBackend",
    "ChainCollectionNotFound",
    "Citation",
    "RagChains",
    "RagChatCompletionResponse",
    "parse_model",
]
