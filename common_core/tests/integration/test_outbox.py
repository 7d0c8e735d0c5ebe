"""The transactional outbox, its relay and the inbox against real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import uuid4

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.events import EssayToProcess, EventEnvelope
from common_core.events.cj import CJAssessmentRequestV1
from common_core.runtime.database import create_engine
from common_core.runtime.inbox import claim_event
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.migrations import run_migrations
from common_core.runtime.outbox import OutboxRelay, add_to_outbox, event_outbox
from common_core.testing import eventually, read_topic

pytestmark = pytest.mark.integration


def _envelope(ref: str) -> EventEnvelope[CJAssessmentRequestV1]:
    return EventEnvelope[CJAssessmentRequestV1](
        event_type="test.outbox",
        source_service="tests",
        correlation_id=uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=ref, essays_to_process=[EssayToProcess(essay_id="e", text_content="t")]
        ),
    )


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await run_migrations(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_outbox(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(event_outbox.delete())


@pytest.fixture
async def producer(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaEventProducer]:
    async with KafkaEventProducer(kafka_bootstrap_servers, client_id="outbox-tests") as p:
        yield p


async def _unpublished(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(event_outbox)
            .where(event_outbox.c.published_at.is_(None))
        )
    return int(count or 0)


async def _attempts(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.max(event_outbox.c.attempts))) or 0)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def _table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


class TestMigrations:
    async def test_outbox_migrations_run_up_down_and_up_again(self, database_url: str) -> None:
        engine = create_engine(database_url)
        try:
            await run_migrations(database_url)
            assert {"event_outbox", "processed_events"} <= await _table_names(engine)
            await run_migrations(database_url, target="base", downgrade=True)
            assert not {"event_outbox", "processed_events"} & await _table_names(engine)
            await run_migrations(database_url)
            await run_migrations(database_url)  # idempotent
            assert {"event_outbox", "processed_events"} <= await _table_names(engine)
        finally:
            await engine.dispose()

    async def test_concurrent_migrations_apply_once(self, database_url: str) -> None:
        await asyncio.gather(*(run_migrations(database_url) for _ in range(3)))
        engine = create_engine(database_url)
        try:
            assert "event_outbox" in await _table_names(engine)
        finally:
            await engine.dispose()


@pytest.mark.usefixtures("clean_outbox")
class TestOutboxRelay:
    async def test_rolled_back_transaction_publishes_nothing(
        self, engine: AsyncEngine, producer: KafkaEventProducer, unique_topic: str
    ) -> None:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await add_to_outbox(conn, topic=unique_topic, envelope=_envelope("x"), key="x")
            await transaction.rollback()
        relay = OutboxRelay(engine, producer, listen=False)
        assert await relay.publish_pending() == 0

    async def test_committed_event_is_published_once_woken_by_notify(
        self,
        engine: AsyncEngine,
        producer: KafkaEventProducer,
        kafka_bootstrap_servers: str,
        unique_topic: str,
    ) -> None:
        await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=1)
        # A poll interval far longer than the test: only the NOTIFY can wake the relay in time.
        relay = OutboxRelay(engine, producer, poll_interval_seconds=600)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.5)  # first (empty) pass done, relay now waits
            envelope = _envelope("batch-7")
            async with engine.begin() as conn:
                await add_to_outbox(conn, topic=unique_topic, envelope=envelope, key="batch-7")
            records = await read_topic(
                kafka_bootstrap_servers, unique_topic, expected=1, timeout=20
            )
        finally:
            relay.stop()
            await task
        assert len(records) == 1
        assert records[0].key == b"batch-7"
        assert json.loads(records[0].value)["event_id"] == str(envelope.event_id)
        assert dict(records[0].headers)["correlation_id"] == str(envelope.correlation_id).encode()
        assert await _unpublished(engine) == 0

    async def test_a_failed_publish_is_recorded_on_the_rows_and_retried_until_it_succeeds(
        self,
        engine: AsyncEngine,
        kafka_bootstrap_servers: str,
        unique_topic: str,
    ) -> None:
        await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=1)
        async with engine.begin() as conn:
            await add_to_outbox(conn, topic=unique_topic, envelope=_envelope("late"), key="late")
        # A producer whose size limit the event exceeds refuses every send of it.
        async with KafkaEventProducer(
            kafka_bootstrap_servers, client_id="outbox-refusing", max_request_size=64
        ) as refusing:
            failing = OutboxRelay(engine, refusing, poll_interval_seconds=0.05, listen=False)
            task = asyncio.create_task(failing.run())
            try:
                await eventually(lambda: _attempts(engine), until=lambda n: n >= 2, timeout=20)
            finally:
                failing.stop()
                await task
        async with engine.connect() as conn:
            last_error = await conn.scalar(select(event_outbox.c.last_error))
        assert last_error  # the operator sees why the row is still there
        assert await _unpublished(engine) == 1

        async with KafkaEventProducer(kafka_bootstrap_servers, client_id="outbox-ok") as ok:
            assert await OutboxRelay(engine, ok, listen=False).publish_pending() == 1
        records = await read_topic(kafka_bootstrap_servers, unique_topic, expected=1)
        assert [r.key for r in records] == [b"late"]

    async def test_published_rows_are_purged_after_the_retention(
        self, engine: AsyncEngine, producer: KafkaEventProducer, unique_topic: str
    ) -> None:
        async with engine.begin() as conn:
            for key in ("old", "older", "oldest"):
                await add_to_outbox(conn, topic=unique_topic, envelope=_envelope(key), key=key)
            await add_to_outbox(conn, topic=unique_topic, envelope=_envelope("new"), key="new")
        relay = OutboxRelay(
            engine, producer, listen=False, retention=timedelta(0), purge_chunk_rows=2
        )
        assert await relay.publish_pending() == 4
        async with engine.begin() as conn:
            await add_to_outbox(conn, topic=unique_topic, envelope=_envelope("new"), key="unsent")
        purged_before = REGISTRY.get_sample_value(
            "huleedu_retention_rows_purged_total", {"kind": "outbox_rows"}
        )
        # Two chunks of two: every published row; the unpublished one stays.
        assert await relay.purge_published() == 4
        async with engine.connect() as conn:
            left = (await conn.execute(select(event_outbox.c.message_key))).scalars().all()
        assert left == ["unsent"]
        purged_after = REGISTRY.get_sample_value(
            "huleedu_retention_rows_purged_total", {"kind": "outbox_rows"}
        )
        assert purged_after is not None
        assert purged_after - (purged_before or 0.0) == 4

    async def test_a_relay_whose_database_is_unreachable_keeps_trying_without_crashing(
        self, producer: KafkaEventProducer
    ) -> None:
        unreachable = create_engine(
            f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/postgres"
        )
        relay = OutboxRelay(unreachable, producer, poll_interval_seconds=0.05)
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(1.0)
            assert not task.done()  # failing passes back off and try again
        finally:
            relay.stop()
            await task
            await unreachable.dispose()

    async def test_a_row_behind_an_earlier_one_of_its_key_another_relay_holds_waits_for_it(
        self,
        engine: AsyncEngine,
        clean_outbox: None,
        producer: KafkaEventProducer,
        kafka_bootstrap_servers: str,
        unique_topic: str,
    ) -> None:
        await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=1)
        first, second, other = _envelope("k-1"), _envelope("k-2"), _envelope("other")
        async with engine.begin() as conn:
            await add_to_outbox(conn, topic=unique_topic, envelope=first, key="k")
            await add_to_outbox(conn, topic=unique_topic, envelope=second, key="k")
            await add_to_outbox(conn, topic=unique_topic, envelope=other, key="j")
        relay = OutboxRelay(engine, producer, listen=False)
        async with engine.connect() as other_relay:
            # Another relay has locked the first row and not published it yet.
            await other_relay.execute(
                select(event_outbox.c.id)
                .where(event_outbox.c.event_id == first.event_id)
                .with_for_update()
            )
            assert await relay.publish_pending() == 1  # only key j's row
            await other_relay.rollback()  # that relay died: its row is free again
        assert await relay.publish_pending() == 2
        records = await read_topic(kafka_bootstrap_servers, unique_topic, expected=3)
        refs = [json.loads(r.value)["data"]["entity_ref"] for r in records]
        assert refs == ["other", "k-1", "k-2"]

    async def test_two_relays_racing_over_1000_rows_publish_each_exactly_once(
        self,
        engine: AsyncEngine,
        kafka_bootstrap_servers: str,
        unique_topic: str,
    ) -> None:
        await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=3)
        envelopes = [_envelope(f"e-{i}") for i in range(1000)]
        async with engine.begin() as conn:
            for i, envelope in enumerate(envelopes):
                await add_to_outbox(conn, topic=unique_topic, envelope=envelope, key=f"k{i % 17}")

        async with (
            KafkaEventProducer(kafka_bootstrap_servers, client_id="relay-1") as p1,
            KafkaEventProducer(kafka_bootstrap_servers, client_id="relay-2") as p2,
        ):
            relays = [
                OutboxRelay(engine, p1, batch_size=40, poll_interval_seconds=0.05),
                OutboxRelay(engine, p2, batch_size=40, poll_interval_seconds=0.05),
            ]
            tasks = [asyncio.create_task(r.run()) for r in relays]
            try:
                await eventually(
                    lambda: _unpublished(engine),
                    until=lambda n: n == 0,
                    timeout=60,
                    what="all rows published",
                )
            finally:
                for relay in relays:
                    relay.stop()
                await asyncio.gather(*tasks)

        records = await read_topic(
            kafka_bootstrap_servers, unique_topic, expected=1000, settle=1.0, timeout=60
        )
        published_ids = [json.loads(r.value)["event_id"] for r in records]
        assert len(published_ids) == 1000
        assert set(published_ids) == {str(e.event_id) for e in envelopes}
        # Each key's events arrived in the order they were staged (one partition per key).
        staged = {str(e.event_id): i for i, e in enumerate(envelopes)}
        by_key: dict[bytes | None, list[int]] = {}
        for record in records:
            by_key.setdefault(record.key, []).append(staged[json.loads(record.value)["event_id"]])
        assert len(by_key) == 17
        assert all(order == sorted(order) for order in by_key.values())
        from prometheus_client import REGISTRY

        per_relay = REGISTRY.get_sample_value(
            "huleedu_outbox_published_total", {"table": engine.url.database or ""}
        )
        assert per_relay is not None
        assert per_relay >= 1000


class TestInbox:
    async def test_an_event_is_claimed_once_per_consumer(self, engine: AsyncEngine) -> None:
        event_id = uuid4()
        async with engine.begin() as conn:
            assert await claim_event(conn, consumer="cj", event_id=event_id) is True
            assert await claim_event(conn, consumer="cj", event_id=event_id) is False
            assert await claim_event(conn, consumer="submission", event_id=event_id) is True
