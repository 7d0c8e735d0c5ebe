"""The concurrent consumer runner against the real Kafka broker: decisions per message, in-order
commits after out-of-order completion, a rebalance while a record is still being handled, a
handler that stops the runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import REGISTRY

from common_core.events import CJAssessmentRequestV1, EssayToProcess, EventEnvelope
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_concurrent import ConcurrentConsumerRunner, StopConsumer
from common_core.runtime.kafka_consumer import (
    ConsumedEvent,
    DeadLetter,
    DeadLetterResponder,
    RejectMessage,
)
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import dlq_topic_name

pytestmark = pytest.mark.integration


def _request(entity_ref: str) -> EventEnvelope[CJAssessmentRequestV1]:
    return EventEnvelope[CJAssessmentRequestV1](
        event_type="test.request",
        source_service="tests",
        correlation_id=uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=entity_ref,
            essays_to_process=[EssayToProcess(essay_id="e1", text_content="An essay.")],
        ),
    )


@pytest.fixture
async def producer(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaEventProducer]:
    async with KafkaEventProducer(kafka_bootstrap_servers, client_id="tests") as p:
        yield p


@pytest.fixture
async def topic(kafka_bootstrap_servers: str, unique_topic: str) -> str:
    await ensure_topics(
        kafka_bootstrap_servers,
        [unique_topic, dlq_topic_name(unique_topic), f"{unique_topic}.replies"],
        partitions=1,
    )
    return unique_topic


class Handler:
    """Handles events by their entity ref: `hold` waits for the gate, `reject` is rejected,
    `flaky` fails transiently twice, `bad` always fails with a data error, `stop` stops."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.handled: list[str] = []
        self.active = 0
        self.max_active = 0
        self.calls: dict[str, int] = {}

    async def __call__(self, event: ConsumedEvent[Any]) -> None:
        ref = event.envelope.data.entity_ref
        self.calls[ref] = self.calls.get(ref, 0) + 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if ref.startswith("hold"):
                await self.gate.wait()
            if ref == "reject":
                raise RejectMessage(event, "entity is poisoned", code="validation")
            if ref == "flaky" and self.calls[ref] <= 2:
                raise ConnectionResetError("connection reset by peer")
            if ref == "bad":
                raise ValueError("invalid byte sequence for encoding UTF8: 0x00")
            if ref == "stop":
                raise StopConsumer("the broker is away")
            self.handled.append(ref)
        finally:
            self.active -= 1


def _answers(reply_topic: str) -> DeadLetterResponder:
    def respond(letter: DeadLetter) -> list[OutgoingMessage]:
        ref = letter.envelope.data.get("entity_ref") if letter.envelope is not None else None
        return [OutgoingMessage(reply_topic, f"failed:{ref}".encode(), key=letter.key)]

    return respond


def _runner(
    bootstrap: str,
    topic: str,
    handler: Handler,
    producer: KafkaEventProducer,
    group: str,
    *,
    max_in_flight: int = 8,
    on_answered: Any = None,
    shutdown_grace_seconds: float = 3.0,
) -> ConcurrentConsumerRunner:
    return ConcurrentConsumerRunner(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="tests",
        payloads={topic: CJAssessmentRequestV1},
        handler=handler,
        producer=producer,
        max_in_flight=max_in_flight,
        responders={topic: _answers(f"{topic}.replies")},
        max_attempts=3,
        retry_backoff_seconds=(0.05, 0.2),
        fetch_timeout_ms=100,
        commit_interval_seconds=0.0,
        shutdown_grace_seconds=shutdown_grace_seconds,
        on_answered=on_answered,
        lag_refresh_seconds=0.0,
    )


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(tp)  # aiokafka ships no type hints
        return committed
    finally:
        await consumer.stop()


async def _value(value: int) -> int:
    return value


class TestDecisions:
    async def test_rejected_failing_and_unreadable_messages_are_dead_lettered_and_answered(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        for ref in ("reject", "bad", "ok"):
            await producer.publish(topic, _request(ref), key=ref)
        await producer.send(OutgoingMessage(topic, b"not json", key="junk"))
        handler = Handler()
        answered: list[str] = []
        runner = _runner(
            kafka_bootstrap_servers,
            topic,
            handler,
            producer,
            f"g-{uuid4().hex}",
            on_answered=lambda letter, _count: answered.append(letter.code),
        )
        task = asyncio.create_task(runner.run())
        try:
            dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=3)
            replies = await read_topic(kafka_bootstrap_servers, f"{topic}.replies", expected=3)
        finally:
            runner.stop()
            await task
        codes = {r.key: dict(r.headers)["x-dlq-error-code"] for r in dead}
        assert codes == {
            b"reject": b"validation",
            b"bad": b"handler_failed",
            b"junk": b"envelope_invalid",
        }
        assert handler.calls["bad"] == 3  # max_attempts
        assert {r.value for r in replies} == {b"failed:reject", b"failed:bad", b"failed:None"}
        assert sorted(answered) == ["envelope_invalid", "handler_failed", "validation"]
        assert handler.handled == ["ok"]

    async def test_a_transient_failure_is_retried_until_it_succeeds_and_nothing_is_dead_lettered(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        await producer.publish(topic, _request("flaky"), key="k")
        await producer.publish(topic, _request("after"), key="k")
        handler = Handler()
        group = f"g-{uuid4().hex}"
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(
                lambda: _committed(kafka_bootstrap_servers, group, TopicPartition(topic, 0)),
                until=lambda offset: offset == 2,
                what="both messages committed",
            )
        finally:
            runner.stop()
            await task
        assert sorted(handler.handled) == ["after", "flaky"]
        assert handler.calls["flaky"] == 3
        dead = await read_topic(
            kafka_bootstrap_servers, dlq_topic_name(topic), expected=0, settle=0.5
        )
        assert dead == []


class TestOrderingAndConcurrency:
    async def test_commits_wait_for_the_lowest_unfinished_message_and_in_flight_is_bounded(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        await producer.publish(topic, _request("hold-first"), key="k")
        for i in range(5):
            await producer.publish(topic, _request(f"later-{i}"), key="k")
        handler = Handler()
        group = f"g-{uuid4().hex}"
        tp = TopicPartition(topic, 0)
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, group, max_in_flight=3)
        task = asyncio.create_task(runner.run())

        async def lag() -> float | None:
            return REGISTRY.get_sample_value(
                "huleedu_consumer_lag_messages", {"group": group, "topic": topic, "partition": "0"}
            )

        try:
            await eventually(lambda: _value(len(handler.handled)), until=lambda n: n == 5)
            assert await _committed(kafka_bootstrap_servers, group, tp) in (None, 0)
            handler.gate.set()
            await eventually(
                lambda: _committed(kafka_bootstrap_servers, group, tp),
                until=lambda offset: offset == 6,
                what="commit of offset 6",
            )
            await eventually(lag, until=lambda value: value == 0.0)
        finally:
            runner.stop()
            await task
        assert handler.max_active <= 3


class TestRebalance:
    async def test_a_record_still_handled_past_the_grace_is_handled_again_and_then_committed(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        """A second member joins while the first is handling a record it cannot finish within
        the grace: the record stays uncommitted, the partition's owner after the rebalance
        (either member, maybe the first again, its old task still running) handles it again,
        and once both copies finish everything is committed, nothing lost or dead-lettered."""
        await producer.publish(topic, _request("hold-1"), key="k")
        await producer.publish(topic, _request("after"), key="k")
        handler = Handler()
        group = f"g-{uuid4().hex}"
        tp = TopicPartition(topic, 0)
        first = _runner(
            kafka_bootstrap_servers, topic, handler, producer, group, shutdown_grace_seconds=0.3
        )
        second = _runner(
            kafka_bootstrap_servers, topic, handler, producer, group, shutdown_grace_seconds=0.3
        )
        tasks = [asyncio.create_task(first.run())]
        try:
            await eventually(
                lambda: _value(handler.calls.get("hold-1", 0) + len(handler.handled)),
                until=lambda n: n == 2,
                what="the first member holding hold-1 and done with the record after it",
            )
            tasks.append(asyncio.create_task(second.run()))
            await eventually(
                lambda: _value(handler.calls["hold-1"]),
                until=lambda n: n >= 2,
                what="hold-1 handed to its owner after the rebalance",
            )
            assert await _committed(kafka_bootstrap_servers, group, tp) in (None, 0)
            handler.gate.set()
            await eventually(
                lambda: _committed(kafka_bootstrap_servers, group, tp),
                until=lambda offset: offset == 2,
                what="both records committed",
            )
        finally:
            first.stop()
            second.stop()
            await asyncio.gather(*tasks)
        assert "hold-1" in handler.handled
        assert "after" in handler.handled
        dead = await read_topic(
            kafka_bootstrap_servers, dlq_topic_name(topic), expected=0, settle=0.5
        )
        assert dead == []


class TestStopping:
    async def test_stop_consumer_stops_the_runner_and_leaves_the_message_uncommitted(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        await producer.publish(topic, _request("stop"), key="k")
        group = f"g-{uuid4().hex}"
        runner = _runner(kafka_bootstrap_servers, topic, Handler(), producer, group)
        with pytest.raises(StopConsumer):
            await asyncio.wait_for(runner.run(), timeout=30)
        assert await _committed(kafka_bootstrap_servers, group, TopicPartition(topic, 0)) in (
            None,
            0,
        )
