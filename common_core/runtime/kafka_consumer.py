"""A Kafka consumer runner: typed decoding, dead-lettering, commits after the handler succeeds.

Decisions per message, after faststream's ack / nack / reject split:
- the handler returns normally: the offset is committed (after the handler's own DB commit);
- the handler raises `RejectMessage`: the message goes to `<topic>.dlq`, the offset is committed;
- the handler raises anything else: nothing is committed, the consumer seeks back and the message
  is redelivered after a backoff;
- the bytes cannot be decoded or fail schema validation: dead-lettered, committed, carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from pydantic import BaseModel

from common_core.events.envelope import (
    EnvelopeDecodeError,
    EventEnvelope,
    PayloadValidationError,
    decode_event,
)
from common_core.runtime.kafka_producer import (
    KafkaEventProducer,
    OutgoingMessage,
    envelope_message,
)
from common_core.runtime.metrics import CONSUMER_MESSAGES, DEAD_LETTERED
from common_core.topics import dlq_topic_name

PayloadT = TypeVar("PayloadT", bound=BaseModel)
log = structlog.get_logger(__name__)

_MAX_ERROR_HEADER = 1000


@dataclass(frozen=True, slots=True)
class ConsumedEvent(Generic[PayloadT]):
    """A decoded message with where it came from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    envelope: EventEnvelope[PayloadT]


class RejectMessage(Exception):  # noqa: N818 - named for the decision, as in faststream
    """Raised by a handler for a message that can never be processed: dead-letter it."""

    def __init__(self, event: ConsumedEvent[Any], reason: str, code: str = "rejected") -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason
        self.code = code


BatchHandler = Callable[[Sequence[ConsumedEvent[Any]]], Awaitable[None]]


def decode_record(
    record: ConsumerRecord[bytes, bytes], model: type[PayloadT]
) -> ConsumedEvent[PayloadT]:
    """Decode a record into a typed event; raises EnvelopeDecodeError or PayloadValidationError."""
    if record.value is None:
        raise EnvelopeDecodeError("message has no value (tombstone)")
    envelope = decode_event(record.value, model)
    key = record.key.decode("utf-8", errors="replace") if record.key is not None else None
    return ConsumedEvent(record.topic, record.partition, record.offset, key, envelope)


def dead_letter_headers(
    *, topic: str, partition: int, offset: int, code: str, reason: str, group_id: str
) -> list[tuple[str, bytes]]:
    """The error headers every dead-lettered message carries."""
    return [
        ("x-dlq-error-code", code.encode()),
        ("x-dlq-error-message", reason[:_MAX_ERROR_HEADER].encode("utf-8", errors="replace")),
        ("x-dlq-original-topic", topic.encode()),
        ("x-dlq-original-partition", str(partition).encode()),
        ("x-dlq-original-offset", str(offset).encode()),
        ("x-dlq-consumer-group", group_id.encode()),
        ("x-dlq-failed-at", datetime.now(UTC).isoformat().encode()),
    ]


def dead_letter_message(
    record: ConsumerRecord[bytes, bytes], *, code: str, reason: str, group_id: str
) -> OutgoingMessage:
    """The DLQ message for a record: the original bytes and key plus error headers."""
    headers = dead_letter_headers(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        code=code,
        reason=reason,
        group_id=group_id,
    )
    headers.extend((k, v) for k, v in (record.headers or ()) if not k.startswith("x-dlq-"))
    key = record.key.decode("utf-8", errors="replace") if record.key is not None else None
    return OutgoingMessage(
        topic=dlq_topic_name(record.topic), value=record.value or b"", key=key, headers=headers
    )


class KafkaConsumerRunner:
    """Consumes topics in a group and feeds decoded batches (one partition at a time) to a handler.

    The handler gets the messages fetched for one partition together so it can use one database
    transaction for all of them; on failure the runner retries them one by one to isolate the bad
    one.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        payloads: Mapping[str, type[BaseModel]],
        handler: BatchHandler,
        producer: KafkaEventProducer,
        client_id: str,
        max_batch_size: int = 200,
        fetch_timeout_ms: int = 200,
        retry_backoff_seconds: tuple[float, float] = (0.2, 5.0),
        group_instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
    ) -> None:
        self._payloads = dict(payloads)
        self._handler = handler
        self._producer = producer
        self._group_id = group_id
        self._max_batch_size = max_batch_size
        self._fetch_timeout_ms = fetch_timeout_ms
        self._backoff_min, self._backoff_max = retry_backoff_seconds
        self._failures: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            *self._payloads,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            group_instance_id=group_instance_id,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_records=max_batch_size,
            # How long the broker may hold a fetch for partitions without data. While one
            # partition's records are still being handled, the next fetch covers only the idle
            # ones; a shorter wait lets a busy partition be fetched again sooner.
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._running = False

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The underlying consumer (for assignment inspection in tests and health checks)."""
        return self._consumer

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and leave the group."""
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        """Stop gracefully on SIGTERM and SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        """Consume until `stop()`; always leaves the group cleanly."""
        await self._consumer.start()
        self._running = True
        try:
            while not self._stopping.is_set():
                fetched = await self._consumer.getmany(
                    timeout_ms=self._fetch_timeout_ms, max_records=self._max_batch_size
                )
                for tp, records in fetched.items():
                    if self._stopping.is_set():
                        break
                    await self._process_partition(tp, records)
        finally:
            self._running = False
            await self._consumer.stop()

    async def _process_partition(
        self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        run: list[ConsumedEvent[Any]] = []
        for record in records:
            try:
                event = decode_record(record, self._payloads[record.topic])
            except (EnvelopeDecodeError, PayloadValidationError) as exc:
                if run and not await self._handle_run(tp, run):
                    return
                run = []
                await self._dead_letter(record, code=exc.code, reason=str(exc))
                await self._commit(tp, record.offset + 1)
                continue
            run.append(event)
        if run:
            await self._handle_run(tp, run)

    async def _handle_run(self, tp: TopicPartition, run: list[ConsumedEvent[Any]]) -> bool:
        """Handle contiguous decoded events; False when the partition must be retried."""
        try:
            await self._handler(run)
        except RejectMessage as rejection:
            if len(run) > 1:
                return await self._handle_one_by_one(tp, run)
            await self._dead_letter_event(rejection.event, rejection.code, rejection.reason)
        except Exception as exc:
            if len(run) > 1:
                return await self._handle_one_by_one(tp, run)
            await self._back_off(tp, run[0], exc)
            return False
        self._failures.pop(tp, None)
        CONSUMER_MESSAGES.labels(topic=tp.topic, outcome="handled").inc(len(run))
        await self._commit(tp, run[-1].offset + 1)
        return True

    async def _handle_one_by_one(self, tp: TopicPartition, run: list[ConsumedEvent[Any]]) -> bool:
        for event in run:
            if not await self._handle_run(tp, [event]):
                return False
        return True

    async def _back_off(
        self, tp: TopicPartition, event: ConsumedEvent[Any], exc: Exception
    ) -> None:
        failures = self._failures.get(tp, 0) + 1
        self._failures[tp] = failures
        delay = min(self._backoff_max, self._backoff_min * 2 ** (failures - 1))
        CONSUMER_MESSAGES.labels(topic=tp.topic, outcome="retried").inc()
        log.warning(
            "handler_failed_will_redeliver",
            topic=tp.topic,
            partition=tp.partition,
            offset=event.offset,
            event_id=str(event.envelope.event_id),
            correlation_id=str(event.envelope.correlation_id),
            error=f"{type(exc).__name__}: {exc}",
            attempt=failures,
            delay_seconds=delay,
        )
        self._consumer.seek(tp, event.offset)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _dead_letter_event(self, event: ConsumedEvent[Any], code: str, reason: str) -> None:
        # The handler saw a decoded event; re-encode it so the DLQ holds a readable original.
        headers = dead_letter_headers(
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
            code=code,
            reason=reason,
            group_id=self._group_id,
        )
        message = envelope_message(dlq_topic_name(event.topic), event.envelope, event.key)
        await self._producer.send(
            OutgoingMessage(message.topic, message.value, message.key, headers + message.headers)
        )
        DEAD_LETTERED.labels(topic=event.topic, code=code).inc()
        log.warning(
            "message_dead_lettered",
            topic=event.topic,
            offset=event.offset,
            code=code,
            reason=reason,
            event_id=str(event.envelope.event_id),
        )

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], *, code: str, reason: str
    ) -> None:
        await self._producer.send(
            dead_letter_message(record, code=code, reason=reason, group_id=self._group_id)
        )
        DEAD_LETTERED.labels(topic=record.topic, code=code).inc()
        log.warning(
            "message_dead_lettered",
            topic=record.topic,
            offset=record.offset,
            code=code,
            reason=reason,
        )

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        try:
            await self._consumer.commit({tp: next_offset})
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved to another member; it will redeliver, and handlers de-duplicate.
            log.warning(
                "offset_commit_failed",
                topic=tp.topic,
                partition=tp.partition,
                offset=next_offset,
                error=str(exc),
            )
