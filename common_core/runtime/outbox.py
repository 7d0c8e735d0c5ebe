"""Transactional outbox: events are written in the caller's transaction and relayed to Kafka.

`add_to_outbox` inserts a row and a NOTIFY in the same transaction as the state change. The
`OutboxRelay` wakes on that NOTIFY (or a short poll), locks a batch of unpublished rows with
`FOR UPDATE SKIP LOCKED`, publishes them with the idempotent producer, waits for the broker's
acknowledgements and marks them published in the same transaction. Two relays never publish the
same row; a relay that dies after publishing but before committing leaves the rows for the next
pass (at-least-once), and consumers de-duplicate on `event_id`.

Events of one key leave in the order of their rows' ids, whatever number of relays run: a relay
leaves a row whose key has an earlier unpublished row that another relay holds (it is published
by a later pass, once that one is out). Writers of one key stage its events under one lock (a
batch's row lock, say), so for each key the ids follow the commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog
from opentelemetry.trace import Span, SpanKind
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from common_core.events.envelope import EventEnvelope, encode_envelope
from common_core.runtime.database import connect_like
from common_core.runtime.error_text import describe_error
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.runtime.metrics import (
    OUTBOX_LAG_SECONDS,
    OUTBOX_PUBLISH_DELAY,
    OUTBOX_PUBLISH_FAILURES,
    OUTBOX_PUBLISHED,
    ROWS_PURGED,
)
from common_core.runtime.tracing import (
    CORRELATION_ID,
    TRACE_HEADERS,
    context_from_headers,
    end_spans,
    open_span,
    span_headers,
    trace_headers,
    tracing_enabled,
)

log = structlog.get_logger(__name__)

OUTBOX_TABLE_NAME = "event_outbox"
PURGE_CHUNK_ROWS = 5000
"""Published rows deleted per transaction by `OutboxRelay.purge_published`."""
OUTBOX_CHANNEL = "event_outbox"
outbox_metadata = MetaData()

event_outbox = Table(
    OUTBOX_TABLE_NAME,
    outbox_metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("topic", Text, nullable=False),
    Column("message_key", Text, nullable=True),
    Column("payload", Text, nullable=False),
    Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Index("ix_event_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
)


def outbox_row(*, topic: str, envelope: EventEnvelope[Any], key: str | None) -> dict[str, Any]:
    """The outbox row of an event, for `add_rows_to_outbox`; its headers hold the trace context
    current when it was staged (tracing on), for the relay to publish it in."""
    return {
        "event_id": envelope.event_id,
        "topic": topic,
        "message_key": key,
        "payload": encode_envelope(envelope).decode("utf-8"),
        "headers": {
            "event_type": envelope.event_type,
            "event_id": str(envelope.event_id),
            "correlation_id": str(envelope.correlation_id),
            **trace_headers(),
        },
    }


async def add_rows_to_outbox(
    session: AsyncSession | AsyncConnection, rows: Sequence[dict[str, Any]]
) -> None:
    """Stage many events with one INSERT and one NOTIFY in the caller's transaction."""
    if not rows:
        return
    await session.execute(event_outbox.insert(), list(rows))
    await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})


async def add_to_outbox(
    session: AsyncSession | AsyncConnection,
    *,
    topic: str,
    envelope: EventEnvelope[Any],
    key: str | None,
) -> None:
    """Stage an event in the caller's transaction; it is published once that commits."""
    await add_rows_to_outbox(session, [outbox_row(topic=topic, envelope=envelope, key=key)])


async def _without_rows_behind_others(conn: AsyncConnection, rows: Sequence[Any]) -> list[Any]:
    """The locked rows less those whose key has an earlier unpublished row this relay did not
    lock: SKIP LOCKED passed it over, so another relay holds it and publishes it first."""
    keys = {(row.topic, row.message_key) for row in rows if row.message_key is not None}
    if not keys:
        return list(rows)
    ours = [row.id for row in rows]
    held_elsewhere = (
        select(event_outbox.c.topic, event_outbox.c.message_key, func.min(event_outbox.c.id))
        .where(
            event_outbox.c.published_at.is_(None),
            event_outbox.c.id < max(ours),
            event_outbox.c.id.not_in(ours),
            tuple_(event_outbox.c.topic, event_outbox.c.message_key).in_(sorted(keys)),
        )
        .group_by(event_outbox.c.topic, event_outbox.c.message_key)
    )
    earliest_elsewhere = {
        (topic, key): first for topic, key, first in (await conn.execute(held_elsewhere)).all()
    }
    return [
        row
        for row in rows
        if row.id < earliest_elsewhere.get((row.topic, row.message_key), row.id + 1)
    ]


def _publish_span(row: Any) -> Span | None:
    """A producer span for a row, the child of the context it was staged in (None when off)."""
    if not tracing_enabled():
        return None
    headers = row.headers or {}
    return open_span(
        f"{row.topic} publish",
        kind=SpanKind.PRODUCER,
        parent=context_from_headers(headers),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": row.topic,
            "messaging.message.id": headers.get("event_id"),
            "messaging.kafka.message.key": row.message_key,
            CORRELATION_ID: headers.get("correlation_id"),
        },
    )


def _message(row: Any, span: Span | None) -> OutgoingMessage:
    """A row as a Kafka message; with a publish span, its trace context replaces the stored one
    (the consumer's span then follows the publish)."""
    stored = row.headers or {}
    if span is not None:
        stored = {k: v for k, v in stored.items() if k not in TRACE_HEADERS} | span_headers(span)
    return OutgoingMessage(
        topic=row.topic,
        value=row.payload.encode("utf-8"),
        key=row.message_key,
        headers=[(k, str(v).encode()) for k, v in stored.items()],
    )


PURGE_INTERVAL = timedelta(hours=1)
"""How often a relay purges published rows past the retention period."""


class OutboxRelay:
    """Publishes outbox rows to Kafka; several relays may run against one table at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: KafkaEventProducer,
        *,
        batch_size: int = 500,
        poll_interval_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
        purge_chunk_rows: int = PURGE_CHUNK_ROWS,
        listen: bool = True,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval = poll_interval_seconds
        self._retention = retention
        self._purge_chunk_rows = purge_chunk_rows
        self._listen = listen
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._label = engine.url.database or OUTBOX_TABLE_NAME

    def stop(self) -> None:
        """Finish the pass in hand, then return from `run`."""
        self._stopping.set()
        self._wake.set()

    def wake(self) -> None:
        """Ask for a pass now (used in-process when an event was just staged)."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until stopped, waking on NOTIFY or every poll interval."""
        listener = await self._start_listener() if self._listen else None
        failures = 0
        last_purge = datetime.now(UTC)
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    OUTBOX_PUBLISH_FAILURES.labels(table=self._label).inc()
                    log.warning(
                        "outbox_publish_failed",
                        error=describe_error(exc),
                        attempt=failures,
                    )
                    await self._record_failure(describe_error(exc))
                    await self._sleep(min(10.0, 0.2 * 2**failures))
                    continue
                if published >= self._batch_size:
                    continue
                if datetime.now(UTC) - last_purge > PURGE_INTERVAL:
                    last_purge = datetime.now(UTC)
                    await self._purge_or_warn()
                await self._sleep(self._poll_interval)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def _purge_or_warn(self) -> None:
        """The periodic purge; a failure (the database away at that moment) is logged and tried
        again at the next interval instead of ending the relay."""
        try:
            await self.purge_published()
        except Exception as exc:
            log.warning("outbox_purge_failed", error=describe_error(exc))

    async def publish_pending(self) -> int:
        """One pass: lock, publish and mark up to `batch_size` rows. Returns how many."""
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        event_outbox.c.id,
                        event_outbox.c.topic,
                        event_outbox.c.message_key,
                        event_outbox.c.payload,
                        event_outbox.c.headers,
                        event_outbox.c.created_at,
                    )
                    .where(event_outbox.c.published_at.is_(None))
                    .order_by(event_outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            rows = await _without_rows_behind_others(conn, rows)
            if not rows:
                OUTBOX_LAG_SECONDS.labels(table=self._label).set(0)
                return 0
            now = datetime.now(UTC)
            OUTBOX_LAG_SECONDS.labels(table=self._label).set(
                max(0.0, (now - rows[0].created_at).total_seconds())
            )
            spans = [_publish_span(row) for row in rows]
            try:
                await self._producer.send_many(
                    [_message(row, span) for row, span in zip(rows, spans, strict=True)]
                )
            except BaseException as exc:
                end_spans(spans, exc)
                raise
            end_spans(spans)
            await conn.execute(
                update(event_outbox)
                .where(event_outbox.c.id.in_([row.id for row in rows]))
                .values(published_at=func.now(), attempts=event_outbox.c.attempts + 1)
            )
        published_at = datetime.now(UTC)
        for row in rows:
            OUTBOX_PUBLISH_DELAY.labels(table=self._label).observe(
                max(0.0, (published_at - row.created_at).total_seconds())
            )
        OUTBOX_PUBLISHED.labels(table=self._label).inc(len(rows))
        return len(rows)

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention period, `purge_chunk_rows` per
        transaction (a short lock on a table the relay and every writer share); how many went.
        Counted as `huleedu_retention_rows_purged_total{kind="outbox_rows"}`."""
        cutoff = datetime.now(UTC) - self._retention
        purged = 0
        while True:
            expired = (
                select(event_outbox.c.id)
                .where(event_outbox.c.published_at < cutoff)
                .limit(self._purge_chunk_rows)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            async with self._engine.begin() as conn:
                result = await conn.execute(
                    event_outbox.delete().where(event_outbox.c.id.in_(expired))
                )
            deleted = int(result.rowcount or 0)
            purged += deleted
            ROWS_PURGED.labels(kind="outbox_rows").inc(deleted)
            if deleted < self._purge_chunk_rows:
                return purged

    async def _record_failure(self, error: str) -> None:
        with contextlib.suppress(Exception):
            async with self._engine.begin() as conn:
                oldest = (
                    select(event_outbox.c.id)
                    .where(event_outbox.c.published_at.is_(None))
                    .order_by(event_outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                    .scalar_subquery()
                )
                await conn.execute(
                    update(event_outbox)
                    .where(event_outbox.c.id.in_(oldest))
                    .values(attempts=event_outbox.c.attempts + 1, last_error=error[:2000])
                )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _start_listener(self) -> asyncpg.Connection | None:
        try:
            connection = await connect_like(self._engine)
            await connection.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox_listen_unavailable_polling_instead", error=describe_error(exc))
            return None
        return connection
