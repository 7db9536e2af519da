"""Prometheus metrics of the backbone (one registry per Herald instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_appended = Counter(
            "herald_events_appended", "Events appended to the log", ["type"], registry=r
        )
        self.messages_rejected = Counter(
            "herald_messages_rejected", "Messages refused at the edge", ["reason"], registry=r
        )
        self.sensor_lag = Gauge(
            "herald_sensor_lag_events",
            "Events in the log not yet seen by the sensor",
            ["sensor"],
            registry=r,
        )
        self.sensor_handled = Counter(
            "herald_sensor_handled", "Events handled by a sensor", ["sensor", "outcome"], registry=r
        )
        self.dispatch_latency = Histogram(
            "herald_sensor_dispatch_latency_seconds",
            "Time from an event's commit to its sensor handler starting",
            ["sensor"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.handler_duration = Histogram(
            "herald_sensor_handler_seconds",
            "Sensor handler run time",
            ["sensor"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.job_transitions = Counter(
            "herald_job_transitions", "Job state transitions", ["name", "status"], registry=r
        )
        self.jobs_running = Gauge(
            "herald_jobs_running", "Jobs running in this worker", ["executor"], registry=r
        )
        self.dead_letters = Counter(
            "herald_dead_letters", "Events dead-lettered by a sensor", ["sensor"], registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
