"""Message types and a sensor for the dashboard browser test (loaded with --load)."""

import time

from pydantic import Field

import herald
from herald.messages.lifecycle import TrainingProgressed


class Ping(herald.Message, type="demo.ping"):
    """Ask for a pong."""

    name: str
    count: int = Field(1, ge=1, le=10, description="how many pongs (1-10)")


class Pong(herald.Message, type="demo.pong"):
    name: str


@herald.sensor(on=Ping)
def pong(msg: Ping, ctx: herald.SensorContext) -> Pong:
    return Pong(name=msg.name)


class TrainDemo(herald.Message, type="demo.train"):
    """Run the demo training job."""

    steps: int = Field(6, ge=1, le=50)


@herald.job(name="demo.curves", executor="inline")
def curves(steps: int, ctx: herald.JobContext) -> dict[str, float]:
    """Reports training.progressed like a fine-tune would, with made-up but plausible numbers."""
    loss = 0.0
    for s in range(1, steps + 1):
        loss = 2.0 / s
        ctx.emit(
            TrainingProgressed(
                job_id=ctx.job_id,
                run_id="demo-run",
                model_name="demo",
                step=s,
                max_steps=steps,
                loss=loss,
                learning_rate=1e-3 * (1 - (s - 1) / steps),
                tokens_per_second=100.0 + s,
            )
        )
        ctx.progress(s / steps, f"step {s}/{steps}")
        ctx.log(f"step {s} loss {loss:.3f}")
        time.sleep(0.1)
    return {"loss": loss}


@herald.sensor(on=TrainDemo)
def train(msg: TrainDemo, ctx: herald.SensorContext) -> None:
    ctx.run_job("demo.curves", {"steps": msg.steps})


class Boom(herald.Message, type="demo.boom"):
    """A message whose sensor fails its first two attempts (dead letter), then recovers."""

    name: str


class Recovered(herald.Message, type="demo.recovered"):
    name: str


ATTEMPTS: dict[str, int] = {}


@herald.sensor(on=Boom)
def flaky(msg: Boom, ctx: herald.SensorContext) -> Recovered:
    ATTEMPTS[msg.name] = ATTEMPTS.get(msg.name, 0) + 1
    if ATTEMPTS[msg.name] <= 2:
        raise RuntimeError(f"flaky failure {ATTEMPTS[msg.name]} for {msg.name}")
    return Recovered(name=msg.name)
