"""Prometheus helpers and the metrics the shared runtime itself records.

Metric names are documented in docs/metrics.md; each service adds its own with its prefix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

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
ROWS_PURGED = Counter(
    "huleedu_retention_rows_purged_total",
    "Rows (or texts in rows) removed by a service's periodic retention purge, by kind "
    "(e.g. cj_essay_texts, submission_answer_texts, llm_batch_items, outbox_rows).",
    ["kind"],
)
ROWS_ERASED = Counter(
    "huleedu_erasure_rows_erased_total",
    "Rows (or texts in rows) removed by an operator's erasure request, by kind.",
    ["kind"],
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

HTTP_REQUESTS = Counter(
    "huleedu_http_requests_total",
    "HTTP requests answered on the API port, by method, route (the URL rule, `unmatched` when "
    "none matched) and status code; the operational routes are not counted.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "huleedu_http_request_duration_seconds",
    "Time from receiving an HTTP request to having sent its answer, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class DatabasePoolCollector(Collector):
    """The connection pools of the services' engines, read when Prometheus scrapes: connections
    checked out and the pool's capacity (size + max overflow), per service.

    A request that finds every connection checked out waits for one (and fails after the
    pool's timeout), so checked out / capacity near 1 is saturation.
    """

    label_names = ("service",)

    def __init__(self) -> None:
        self._engines: dict[int, tuple[str, Engine]] = {}

    @contextlib.contextmanager
    def watching(self, service: str, engine: AsyncEngine) -> Iterator[None]:
        """Report `engine`'s pool under `service` while the block runs."""
        key = id(engine.sync_engine)
        self._engines[key] = (service, engine.sync_engine)
        try:
            yield
        finally:
            self._engines.pop(key, None)

    def describe(self) -> Iterable[Metric]:
        """The two families, without samples (registration needs no engine)."""
        return self._families()

    def collect(self) -> Iterable[Metric]:
        """Each watched pool's current figures (summed per service: tests run several instances
        of a service in one process)."""
        checked_out: dict[str, int] = {}
        capacity: dict[str, int] = {}
        unbounded: set[str] = set()
        for service, engine in list(self._engines.values()):
            pool = engine.pool  # read each time: dispose() replaces it
            if not isinstance(pool, QueuePool):
                continue
            checked_out[service] = checked_out.get(service, 0) + pool.checkedout()
            # QueuePool has no public accessor for its max overflow; -1 means unbounded.
            max_overflow = pool._max_overflow
            if max_overflow < 0:
                unbounded.add(service)
            capacity[service] = capacity.get(service, 0) + pool.size() + max(max_overflow, 0)
        in_use, limit = self._families()
        for service, value in checked_out.items():
            in_use.add_metric([service], value)
        for service, value in capacity.items():
            if service not in unbounded:
                limit.add_metric([service], value)
        return [in_use, limit]

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "huleedu_db_pool_connections_checked_out",
                "Connections of the service's database pool in use (checked out), per service.",
                labels=self.label_names,
            ),
            GaugeMetricFamily(
                "huleedu_db_pool_connections_capacity",
                "Most connections the service's database pool hands out at once (pool size + "
                "max overflow), per service.",
                labels=self.label_names,
            ),
        )


DATABASE_POOLS = DatabasePoolCollector()
REGISTRY.register(DATABASE_POOLS)
