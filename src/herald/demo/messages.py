"""Message types of the closed-loop demo."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from herald.messages.base import Message

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class DemoRequested(Message, type="demo.requested"):
    """Run the whole lifecycle once on a new registry model + deployment called ``name``."""

    name: str = Field("demo", pattern=NAME_PATTERN, description="registry model and deployment")
    base_model: str = Field("smollm2-135m-instruct", description="what the first run fine-tunes")
    dataset: str = Field(description="chat JSONL of the first fine-tune (examples/data)")
    suite: str = Field(description="evaluation suite path or name (examples/eval/tiny.yaml)")
    reference_prompts: list[str] = Field(
        min_length=2, description="prompts of the reference traffic window"
    )
    drift_prompts: list[str] = Field(
        min_length=2, description="prompts of the drifted window (rated 👍, then retrained on)"
    )
    gateway_url: str = Field(description="the OpenAI-compatible gateway the traffic goes to")
    max_steps: int = Field(3, ge=1, le=1000, description="LoRA steps of each fine-tune")
    max_tokens: int = Field(8, ge=1, le=256, description="completion tokens per demo request")
    eval_limit: int | None = Field(None, ge=1, description="evaluate only the first N items")
    rollout: dict[str, Any] = Field(
        default_factory=dict, description="rollout policy of the demo deployment"
    )
    finetune: dict[str, Any] = Field(
        default_factory=dict, description="extra finetune.requested parameters"
    )


class DemoTrafficServed(Message, type="demo.traffic.served"):
    """The demo's traffic job sent requests through the gateway."""

    name: str
    mode: str = Field(description="'drift' (reference then drifted windows) or 'canary'")
    requests: int
    errors: int = 0
    feedback: int = 0
    windows: dict[str, float] = Field(default_factory=dict, description="window bounds (epoch)")


class DemoCompleted(Message, type="demo.completed"):
    """The demo reached its end: ``ok`` with the retrained version rolled out, or why not."""

    name: str
    ok: bool
    reason: str = ""
    version: str | None = Field(None, description="the version serving 100 % at the end")


DEMO_MESSAGES = (DemoRequested, DemoTrafficServed, DemoCompleted)
