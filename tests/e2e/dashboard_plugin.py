"""Message types and a sensor for the dashboard browser test (loaded with --load)."""

from pydantic import Field

import herald


class Ping(herald.Message, type="demo.ping"):
    """Ask for a pong."""

    name: str
    count: int = Field(1, ge=1, le=10, description="how many pongs (1-10)")


class Pong(herald.Message, type="demo.pong"):
    name: str


@herald.sensor(on=Ping)
def pong(msg: Ping, ctx: herald.SensorContext) -> Pong:
    return Pong(name=msg.name)
