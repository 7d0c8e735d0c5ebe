"""The producer wrapper and consumer runner against the real Kafka broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY

from common_core.events import (
    CJAssessmentRequestV1,
    EssayToProcess,
    EventEnvelope,
)
from common_core.events.envelope import encode_envelope
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_consumer import (
    ConsumedEvent,
    DeadLetter,
    DeadLetterResponder,
    KafkaConsumerRunner,
    RejectMessage,
)
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import dlq_topic_name

pytestmark = pytest.mark.integration


def _request_envelope(entity_ref: str) -> EventEnvelope[CJAssessmentRequestV1]:
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
        kafka_bootstrap_servers, [unique_topic, dlq_topic_name(unique_topic)], partitions=1
    )
    return unique_topic


class Collector:
    """A batch handler that records what it saw and can be told to fail."""

    def __init__(self, fail_times: int = 0, reject_ref: str | None = None) -> None:
        self.seen: list[ConsumedEvent[Any]] = []
        self.calls = 0
        self._fail_times = fail_times
        self._reject_ref = reject_ref

    async def __call__(self, events: Sequence[ConsumedEvent[Any]]) -> None:
        self.calls += 1
        if self._fail_times > 0:
            self._fail_times -= 1
            raise ConnectionRefusedError("database unavailable")
        for event in events:
            if event.envelope.data.entity_ref == self._reject_ref:
                raise RejectMessage(event, "entity is poisoned", code="validation")
        self.seen.extend(events)


class FailsOnRef(Collector):
    """Fails every batch holding `ref`, the first `times` times it sees one."""

    def __init__(self, ref: str, times: int) -> None:
        super().__init__()
        self.failures = 0
        self._ref, self._times = ref, times

    async def __call__(self, events: Sequence[ConsumedEvent[Any]]) -> None:
        holds_ref = any(e.envelope.data.entity_ref == self._ref for e in events)
        if holds_ref and self.failures < self._times:
            self.failures += 1
            raise ConnectionRefusedError("database unavailable")
        await super().__call__(events)


class RaisesOnRef(Collector):
    """Raises a data error (not a transient one) every time it sees `ref`."""

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.failures = 0
        self._ref = ref

    async def __call__(self, events: Sequence[ConsumedEvent[Any]]) -> None:
        if any(e.envelope.data.entity_ref == self._ref for e in events):
            self.failures += 1
            raise ValueError("invalid byte sequence for encoding UTF8: 0x00")
        await super().__call__(events)


class TransientOnPartition(Collector):
    """The database is away for one partition's messages only (as if its rows were locked)."""

    def __init__(self, partition: int) -> None:
        super().__init__()
        self.failures = 0
        self._partition = partition

    async def __call__(self, events: Sequence[ConsumedEvent[Any]]) -> None:
        if any(e.partition == self._partition for e in events):
            self.failures += 1
            raise ConnectionResetError("connection reset by peer")
        await super().__call__(events)


def _runner(
    bootstrap: str,
    topic: str,
    handler: Collector,
    producer: KafkaEventProducer,
    group: str,
    *,
    max_attempts: int = 5,
    responder: DeadLetterResponder | None = None,
) -> KafkaConsumerRunner:
    return KafkaConsumerRunner(
        bootstrap_servers=bootstrap,
        group_id=group,
        payloads={topic: CJAssessmentRequestV1},
        handler=handler,
        producer=producer,
        client_id="tests",
        retry_backoff_seconds=(0.05, 0.2),
        max_attempts=max_attempts,
        responders={topic: responder} if responder is not None else None,
    )


class AnswersSender:
    """A responder that records the dead letters it saw and answers each on `reply_topic`."""

    def __init__(self, reply_topic: str) -> None:
        self.letters: list[DeadLetter] = []
        self._reply_topic = reply_topic

    def __call__(self, letter: DeadLetter) -> list[OutgoingMessage]:
        self.letters.append(letter)
        ref = letter.envelope.data.get("entity_ref") if letter.envelope is not None else None
        return [OutgoingMessage(self._reply_topic, f"failed:{ref}".encode(), key=letter.key)]


async def _seen_count(handler: Collector) -> int:
    return len(handler.seen)


class TestProduceAndConsume:
    async def test_envelope_is_consumed_and_decoded_with_its_correlation_id(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        envelope = _request_envelope("batch-1")
        await producer.publish(topic, envelope, key="batch-1")
        handler = Collector()
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, f"g-{uuid4().hex}")
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task
        event = handler.seen[0]
        assert event.envelope.correlation_id == envelope.correlation_id
        assert event.envelope.event_id == envelope.event_id
        assert event.envelope.data == envelope.data
        assert event.key == "batch-1"


class TestDeadLetters:
    async def test_poison_message_goes_to_dlq_and_next_message_is_handled(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        await producer.send(OutgoingMessage(topic=topic, value=b"{not json", key="x"))
        await producer.send(OutgoingMessage(topic=topic, value=b'{"event_id": "nope"}', key="y"))
        good = _request_envelope("batch-ok")
        await producer.publish(topic, good, key="batch-ok")
        handler = Collector()
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, f"g-{uuid4().hex}")
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task

        assert handler.seen[0].envelope.event_id == good.event_id
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=2)
        assert [r.value for r in dead] == [b"{not json", b'{"event_id": "nope"}']
        headers = dict(dead[0].headers)
        assert headers["x-dlq-error-code"] == b"envelope_invalid"
        assert headers["x-dlq-original-topic"] == topic.encode()
        assert headers["x-dlq-original-offset"] == b"0"
        assert b"not UTF-8 JSON" in headers["x-dlq-error-message"]
        assert dict(dead[1].headers)["x-dlq-error-code"] == b"envelope_invalid"

    async def test_rejected_message_is_dead_lettered_and_its_neighbours_are_handled(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        for ref in ("a", "poison", "b"):
            await producer.publish(topic, _request_envelope(ref), key=ref)
        handler = Collector(reject_ref="poison")
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, f"g-{uuid4().hex}")
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 2)
        finally:
            runner.stop()
            await task
        assert [e.envelope.data.entity_ref for e in handler.seen] == ["a", "b"]
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=1)
        assert len(dead) == 1
        assert dict(dead[0].headers)["x-dlq-error-code"] == b"validation"


class TestFailurePolicy:
    async def test_a_message_that_keeps_failing_is_dead_lettered_after_max_attempts(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        for ref in ("before", "poison", "after"):
            await producer.publish(topic, _request_envelope(ref), key="same-key")
        reply_topic = f"{topic}.replies"
        await ensure_topics(kafka_bootstrap_servers, [reply_topic], partitions=1)
        handler = RaisesOnRef("poison")
        responder = AnswersSender(reply_topic)
        group = f"g-{uuid4().hex}"
        runner = _runner(
            kafka_bootstrap_servers,
            topic,
            handler,
            producer,
            group,
            max_attempts=3,
            responder=responder,
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 2)
            tp = TopicPartition(topic, 0)
            await eventually(lambda: runner.consumer.committed(tp), until=lambda o: o == 3)
        finally:
            runner.stop()
            await task

        assert [e.envelope.data.entity_ref for e in handler.seen] == ["before", "after"]
        # Only its failures alone count (a batch holding it is split first): three, then the DLQ.
        assert handler.failures >= 3
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=1)
        assert len(dead) == 1
        headers = dict(dead[0].headers)
        assert headers["x-dlq-error-code"] == b"handler_failed"
        assert headers["x-dlq-attempts"] == b"3"
        assert headers["x-dlq-original-topic"] == topic.encode()
        assert headers["x-dlq-original-partition"] == b"0"
        assert headers["x-dlq-original-offset"] == b"1"
        assert b"ValueError" in headers["x-dlq-error-message"]
        assert dead[0].key == b"same-key"
        assert [
            letter.envelope.data["entity_ref"] for letter in responder.letters if letter.envelope
        ] == ["poison"]
        replies = await read_topic(kafka_bootstrap_servers, reply_topic, expected=1)
        assert [r.value for r in replies] == [b"failed:poison"]

    async def test_an_invalid_payload_is_answered_by_the_responder_with_the_fields(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        bad = _request_envelope("nul-essay").model_dump(mode="json")
        bad["data"]["essays_to_process"][0]["text_content"] = "An essay\u0000with a NUL."
        await producer.send(OutgoingMessage(topic, json.dumps(bad).encode(), key="k"))
        await producer.publish(topic, _request_envelope("valid"), key="k")
        reply_topic = f"{topic}.replies"
        await ensure_topics(kafka_bootstrap_servers, [reply_topic], partitions=1)
        handler = Collector()
        responder = AnswersSender(reply_topic)
        runner = _runner(
            kafka_bootstrap_servers,
            topic,
            handler,
            producer,
            f"g-{uuid4().hex}",
            responder=responder,
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task
        assert handler.seen[0].envelope.data.entity_ref == "valid"
        (letter,) = responder.letters
        assert letter.code == "payload_invalid"
        assert [f.field for f in letter.fields] == ["essays_to_process.0.text_content"]
        assert "NUL" in letter.fields[0].reason
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=1)
        assert dict(dead[0].headers)["x-dlq-error-code"] == b"payload_invalid"
        assert b"NUL" in dict(dead[0].headers)["x-dlq-error-message"]

    async def test_transient_failures_on_one_partition_do_not_hold_up_the_others(
        self, kafka_bootstrap_servers: str, unique_topic: str, producer: KafkaEventProducer
    ) -> None:
        topic = unique_topic
        await ensure_topics(kafka_bootstrap_servers, [topic, dlq_topic_name(topic)], partitions=2)
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
        await raw.start()
        try:
            for i in range(6):
                envelope = _request_envelope(f"p{i % 2}-{i}")
                await raw.send_and_wait(topic, encode_envelope(envelope), partition=i % 2)
        finally:
            await raw.stop()
        handler = TransientOnPartition(partition=0)
        runner = _runner(
            kafka_bootstrap_servers, topic, handler, producer, f"g-{uuid4().hex}", max_attempts=2
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 3)
            # Far more failures than max_attempts: transient ones are retried for as long as
            # it takes and never dead-lettered.
            await eventually(lambda: asyncio.sleep(0, handler.failures), until=lambda n: n >= 6)
            assert await runner.consumer.committed(TopicPartition(topic, 0)) is None
        finally:
            runner.stop()
            await task
        assert sorted(e.envelope.data.entity_ref for e in handler.seen) == ["p1-1", "p1-3", "p1-5"]
        assert (
            await read_topic(
                kafka_bootstrap_servers, dlq_topic_name(topic), expected=1, timeout=2.0
            )
            == []
        )


class TestRunnerEdges:
    async def test_max_attempts_must_allow_one_attempt(self, kafka_bootstrap_servers: str) -> None:
        async with KafkaEventProducer(kafka_bootstrap_servers, client_id="t") as producer:
            with pytest.raises(ValueError, match="max_attempts"):
                _runner(kafka_bootstrap_servers, "t", Collector(), producer, "g", max_attempts=0)

    async def test_a_tombstone_is_dead_lettered_even_when_the_responder_fails(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
        await raw.start()
        try:
            await raw.send_and_wait(topic, None, key=b"deleted")
        finally:
            await raw.stop()
        await producer.publish(topic, _request_envelope("after"), key="deleted")

        def broken_responder(letter: DeadLetter) -> list[OutgoingMessage]:
            raise RuntimeError("a bug in the responder")

        handler = Collector()
        runner = _runner(
            kafka_bootstrap_servers,
            topic,
            handler,
            producer,
            f"g-{uuid4().hex}",
            responder=broken_responder,
        )
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=1)
        assert dict(dead[0].headers)["x-dlq-error-code"] == b"envelope_invalid"
        assert b"tombstone" in dict(dead[0].headers)["x-dlq-error-message"]

    async def test_the_lag_gauge_reads_zero_once_everything_is_handled(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        for ref in ("a", "b", "c"):
            await producer.publish(topic, _request_envelope(ref), key="k")
        group = f"g-{uuid4().hex}"
        handler = Collector()
        runner = KafkaConsumerRunner(
            bootstrap_servers=kafka_bootstrap_servers,
            group_id=group,
            payloads={topic: CJAssessmentRequestV1},
            handler=handler,
            producer=producer,
            client_id="tests",
            lag_refresh_seconds=0.0,
        )
        task = asyncio.create_task(runner.run())

        async def lag() -> float | None:
            return REGISTRY.get_sample_value(
                "huleedu_consumer_lag_messages",
                {"group": group, "topic": topic, "partition": "0"},
            )

        try:
            await eventually(lambda: _seen_count(handler), until=lambda n: n == 3)
            await eventually(lag, until=lambda value: value == 0.0)
        finally:
            runner.stop()
            await task


class TestRedelivery:
    async def test_handler_failure_leaves_offset_uncommitted_and_message_is_redelivered(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        envelope = _request_envelope("flaky")
        await producer.publish(topic, envelope, key="flaky")
        group = f"g-{uuid4().hex}"
        tp = TopicPartition(topic, 0)

        failing = Collector(fail_times=10_000)
        runner = _runner(kafka_bootstrap_servers, topic, failing, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: asyncio.sleep(0, failing.calls), until=lambda n: n >= 3)
            assert await runner.consumer.committed(tp) is None
        finally:
            runner.stop()
            await task
        assert failing.seen == []

        # The group's committed position is still before the message: a new member gets it.
        recovering = Collector(fail_times=1)
        runner = _runner(kafka_bootstrap_servers, topic, recovering, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(recovering), until=lambda n: n == 1)
            await eventually(lambda: runner.consumer.committed(tp), until=lambda o: o == 1)
        finally:
            runner.stop()
            await task
        assert recovering.calls == 2
        assert recovering.seen[0].envelope.event_id == envelope.event_id

    async def test_failure_mid_stream_redelivers_from_the_failed_message_in_order(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        # The runner fetches and decodes the next messages while the handler works; when the
        # handler fails, what was fetched meanwhile must be dropped and read again in order.
        refs = [f"m{i:02d}" for i in range(40)]
        for ref in refs[:20]:
            await producer.publish(topic, _request_envelope(ref), key="k")
        handler = FailsOnRef("m07", times=2)
        group = f"g-{uuid4().hex}"
        runner = _runner(kafka_bootstrap_servers, topic, handler, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: asyncio.sleep(0, handler.failures), until=lambda n: n >= 1)
            for ref in refs[20:]:
                await producer.publish(topic, _request_envelope(ref), key="k")
            await eventually(lambda: _seen_count(handler), until=lambda n: n >= len(refs))
            tp = TopicPartition(topic, 0)
            await eventually(lambda: runner.consumer.committed(tp), until=lambda o: o == 40)
        finally:
            runner.stop()
            await task
        assert handler.failures == 2
        assert [e.envelope.data.entity_ref for e in handler.seen] == refs

    async def test_committed_offset_survives_restart_so_nothing_is_handled_twice(
        self, kafka_bootstrap_servers: str, topic: str, producer: KafkaEventProducer
    ) -> None:
        group = f"g-{uuid4().hex}"
        await producer.publish(topic, _request_envelope("first"), key="k")
        first = Collector()
        runner = _runner(kafka_bootstrap_servers, topic, first, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(first), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task

        await producer.publish(topic, _request_envelope("second"), key="k")
        second = Collector()
        runner = _runner(kafka_bootstrap_servers, topic, second, producer, group)
        task = asyncio.create_task(runner.run())
        try:
            await eventually(lambda: _seen_count(second), until=lambda n: n == 1)
        finally:
            runner.stop()
            await task
        assert [e.envelope.data.entity_ref for e in second.seen] == ["second"]


async def test_ensure_topics_creates_partitions_once(
    kafka_bootstrap_servers: str, unique_topic: str
) -> None:
    await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=3)
    await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        partitions = await producer.partitions_for(unique_topic)
    finally:
        await producer.stop()
    assert partitions == {0, 1, 2}


class TestRebalances:
    async def test_a_member_joining_the_group_counts_as_a_rebalance_for_the_first(
        self, kafka_bootstrap_servers: str, unique_topic: str, producer: KafkaEventProducer
    ) -> None:
        await ensure_topics(
            kafka_bootstrap_servers, [unique_topic, dlq_topic_name(unique_topic)], partitions=2
        )
        group = f"g-{uuid4().hex}"
        first = _runner(kafka_bootstrap_servers, unique_topic, Collector(), producer, group)
        second = _runner(kafka_bootstrap_servers, unique_topic, Collector(), producer, group)

        async def rebalances() -> float:
            sample = REGISTRY.get_sample_value(
                "huleedu_consumer_rebalances_total", {"group": group}
            )
            return sample or 0.0

        first_task = asyncio.create_task(first.run())
        second_task: asyncio.Task[None] | None = None
        try:
            await eventually(
                lambda: _assigned(first), until=lambda n: n == 2, what="both partitions"
            )
            assert await rebalances() == 0.0  # joining is not a rebalance
            second_task = asyncio.create_task(second.run())
            await eventually(
                lambda: _assigned(second), until=lambda n: n == 1, what="one partition moved"
            )
            await eventually(rebalances, until=lambda n: n >= 1.0, what="a rebalance counted")
        finally:
            first.stop()
            second.stop()
            await asyncio.gather(
                first_task, *([second_task] if second_task else []), return_exceptions=True
            )


async def _assigned(runner: KafkaConsumerRunner) -> int:
    return len(runner.consumer.assignment())
