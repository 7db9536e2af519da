"""Chat templates rendered in a Jinja2 sandbox (the Hugging Face template conventions), for
backends whose runtime has no renderer of its own (llama.cpp GGUF metadata templates)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from herald.security.templates import BoundedSandbox, render
from herald.serving.errors import BadParameter


def _raise(message: str) -> None:
    raise BadParameter(f"chat template refused the messages: {message}", param="messages")


@lru_cache(maxsize=32)
def _compile(template: str) -> Any:
    from jinja2.ext import loopcontrols

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.filters["tojson"] = lambda x, indent=None, **_: json.dumps(
        x, indent=indent, ensure_ascii=False
    )
    return env.from_string(template)


def render_chat(
    template: str,
    messages: list[dict[str, Any]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render ``messages`` with ``template`` (bounded sandbox: no attribute writes, no
    imports, a step and an output budget)."""
    from jinja2 import TemplateError

    try:
        compiled = _compile(template)
        values = {
            "messages": messages,
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
        }
        out = render(
            compiled.environment, template, values, compiled=compiled, passthrough=(BadParameter,)
        )  # BadParameter: the template's own raise_exception()
    except TemplateError as exc:
        raise BadParameter(f"the chat template failed: {exc}", param="messages") from exc
    return out


def same_template(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").split()) == " ".join((b or "").split())
