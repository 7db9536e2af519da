"""The prompt registry: versioned Jinja2 prompt templates (``prompts:/name/3``,
``prompts:/name@production``) with variables validated at render time; ``prompt.registered`` /
``prompt.promoted`` messages. Imported as a built-in plugin (message types only; cheap)."""

from herald.prompts.messages import PromptPromoted, PromptRegistered
from herald.prompts.store import (
    PromptError,
    PromptNotFound,
    PromptRenderError,
    PromptStore,
    PromptVersion,
    open_prompt_store,
    parse_ref,
    template_variables,
)

__all__ = [
    "PromptError",
    "PromptNotFound",
    "PromptPromoted",
    "PromptRegistered",
    "PromptRenderError",
    "PromptStore",
    "PromptVersion",
    "open_prompt_store",
    "parse_ref",
    "template_variables",
]
