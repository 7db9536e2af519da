"""A cron sensor ticking every two seconds (croniter's sixth field is seconds)."""

import herald


class Ticked(herald.Message, type="test.cron.ticked"):
    tick: str


@herald.schedule("* * * * * */2", name="every-two-seconds")
def every_two_seconds(ctx: herald.SensorContext) -> Ticked:
    return Ticked(tick=str(ctx.event.data["tick"]))
