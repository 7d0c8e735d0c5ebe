"""Prometheus helpers and the metrics the shared runtime itself records.

Metric names are documented in docs/metrics.md; each service adds its own with its prefix.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

CONSUMER_MESSAGES = Counter(
    "huleedu_consumer_messages_total",
    "Kafka messages handled by consumer runners, by topic and outcome "
    "(handled, retried, retried_transient).",
    ["topic", "outcome"],
)
DEAD_LETTERED = Counter(
    "huleedu_dead_lettered_total",
    "Messages sent to a dead-letter topic, by source topic and reason (the error code).",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "huleedu_consumer_lag_messages",
    "Messages on a partition past what its consumer group member has committed.",
    ["group", "topic", "partition"],
)
OUTBOX_PUBLISHED = Counter(
    "huleedu_outbox_published_total", "Outbox rows published to Kafka.", ["table"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "huleedu_outbox_publish_failures_total",
    "Outbox relay batches that failed to publish.",
    ["table"],
)
OUTBOX_LAG_SECONDS = Gauge(
    "huleedu_outbox_lag_seconds",
    "Age of the oldest unpublished outbox row at the relay's last pass.",
    ["table"],
)
OUTBOX_PUBLISH_DELAY = Histogram(
    "huleedu_outbox_publish_delay_seconds",
    "Time from an outbox row's creation to its publication.",
    ["table"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def render_metrics(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The exposition body and its content type, for a `/metrics` endpoint."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


EVENT_LOOP_LAG = Histogram(
    "huleedu_event_loop_lag_seconds",
    "How late the event loop ran a timer it was asked to run (a blocked loop stops heartbeats, "
    "consumers and the HTTP API alike).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_LOOP_LAG_MAX = Gauge(
    "huleedu_event_loop_lag_max_seconds",
    "The largest event-loop lag measured since the process started.",
)
COMPUTE_SECONDS = Histogram(
    "huleedu_compute_seconds",
    "CPU-heavy computations run off the event loop, by kind: time on a worker thread.",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
COMPUTE_WAIT_SECONDS = Histogram(
    "huleedu_compute_wait_seconds",
    "Time a computation waited for a worker (or for the computation before it on the same key).",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_REBALANCES = Counter(
    "huleedu_consumer_rebalances_total",
    "Partition assignments a consumer group member received after the first (each one follows "
    "a rebalance: a member joined or left, or this one was thrown out of the group).",
    ["group"],
)
