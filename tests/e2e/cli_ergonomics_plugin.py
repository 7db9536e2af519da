"""A sensor that always fails, so `herald dead-letters` has rows (tests/e2e/test_cli_ergonomics.py)."""

from __future__ import annotations

import herald

REFUSAL = (
    "the downstream billing service refused the request because the configured credentials "
    "expired yesterday; rotate them in the secrets store and replay this event"
)


class Poke(herald.Message, type="test.ergonomics.poke"):
    n: int


@herald.sensor(on=Poke, name="grumpy")
def grumpy(msg: Poke, ctx: herald.SensorContext) -> None:
    raise RuntimeError(REFUSAL)
