"""A Kafka consumer runner: typed decoding, dead-lettering, commits after the handler succeeds.

Decisions per message, after faststream's ack / nack / reject split:
- the handler returns normally: the offset is committed (after the handler's own DB commit);
- the handler raises `RejectMessage`: the message goes to `<topic>.dlq`, the offset is committed;
- the handler raises a transient infrastructure error (`failures.is_transient`: the database or
  broker unreachable, a reset connection, a timeout): nothing is committed and the partition is
  paused and read again from that message after a backoff, for as long as it takes; the other
  partitions keep flowing meanwhile;
- the handler raises anything else (this message's data makes it fail): the same, but at most
  `max_attempts` times; then the message goes to `<topic>.dlq` and the partition moves on;
- the bytes cannot be decoded or fail schema validation: dead-lettered, committed, carry on.

Whenever a message is dead-lettered, the topic's `DeadLetterResponder` (if any) may answer the
sender (a failed event, an error callback) so that nobody waits for ever on a message that will
never be processed.

The pieces both engines share live here: decoding (`decode_or_undecodable`), the group member
(`group_consumer`, `GroupListener`, `GroupMembership`), commits (`commit_offsets`), dead letters
(`DeadLetterPublisher`) and lag (`ConsumerLagReporter`). `kafka_concurrent` is the other engine,
for handlers slow enough to need many messages in flight at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.types import AttributeValue
from pydantic import BaseModel

from common_core.events.envelope import (
    EnvelopeDecodeError,
    EventEnvelope,
    FieldError,
    PayloadValidationError,
    RawEnvelope,
    decode_event,
)
from common_core.runtime.error_text import describe_error
from common_core.runtime.failures import is_transient
from common_core.runtime.kafka_producer import (
    KafkaEventProducer,
    OutgoingMessage,
    envelope_message,
    send_acknowledged,
)
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity, acl_refusals
from common_core.runtime.metrics import (
    CONSUMER_LAG,
    CONSUMER_MESSAGES,
    CONSUMER_REBALANCES,
    DEAD_LETTERED,
)
from common_core.runtime.tracing import (
    CORRELATION_ID,
    context_from_headers,
    links_to,
    traced,
    tracing_enabled,
)
from common_core.topics import dlq_topic_name

PayloadT = TypeVar("PayloadT", bound=BaseModel)
log = structlog.get_logger(__name__)

_MAX_ERROR_HEADER = 1000
_LAG_REFRESH_SECONDS = 10.0

HANDLER_FAILED = "handler_failed"


@dataclass(frozen=True, slots=True)
class ConsumedEvent(Generic[PayloadT]):
    """A decoded message with where it came from."""

    topic: str
    partition: int
    offset: int
    key: str | None
    envelope: EventEnvelope[PayloadT]
    headers: Sequence[tuple[str, bytes]] = ()
    """The record's headers (the sender's trace context among them)."""


class RejectMessage(Exception):  # noqa: N818 - named for the decision, as in faststream
    """Raised by a handler for a message that can never be processed: dead-letter it."""

    def __init__(self, event: ConsumedEvent[Any], reason: str, code: str = "rejected") -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record that failed decoding: it is dead-lettered in its turn."""

    record: ConsumerRecord[bytes, bytes]
    code: str
    reason: str
    envelope: RawEnvelope | None = None
    fields: tuple[FieldError, ...] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What the runner knows about a message it gives up on, for a `DeadLetterResponder`.

    `envelope` is the readable envelope (its `data` an untyped JSON object) when there is one;
    `fields` the rejected fields when the payload failed validation.
    """

    topic: str
    partition: int
    offset: int
    key: str | None
    code: str
    reason: str
    attempts: int
    envelope: RawEnvelope | None
    fields: tuple[FieldError, ...] = ()


DeadLetterResponder = Callable[[DeadLetter], Sequence[OutgoingMessage]]
"""Builds the messages that tell a dead letter's sender what was wrong (may return none)."""

BatchHandler = Callable[[Sequence[ConsumedEvent[Any]]], Awaitable[None]]


def record_key(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """A record's key as text (the entity it is about), None for a record without one."""
    return record.key.decode("utf-8", errors="replace") if record.key is not None else None


def decode_record(
    record: ConsumerRecord[bytes, bytes], model: type[PayloadT]
) -> ConsumedEvent[PayloadT]:
    """Decode a record into a typed event; raises EnvelopeDecodeError or PayloadValidationError."""
    if record.value is None:
        raise EnvelopeDecodeError("message has no value (tombstone)")
    envelope = decode_event(record.value, model)
    key = record_key(record)
    headers = record.headers or ()
    return ConsumedEvent(record.topic, record.partition, record.offset, key, envelope, headers)


def decode_or_undecodable(
    record: ConsumerRecord[bytes, bytes], model: type[BaseModel]
) -> ConsumedEvent[Any] | Undecodable:
    """Decode a record, or say why it cannot be (to dead-letter it)."""
    try:
        return decode_record(record, model)
    except PayloadValidationError as exc:
        return Undecodable(record, exc.code, str(exc), exc.envelope, exc.fields)
    except EnvelopeDecodeError as exc:
        return Undecodable(record, exc.code, str(exc))


def consume_span(
    topic: str, events: Sequence[ConsumedEvent[Any]]
) -> contextlib.AbstractContextManager[None]:
    """With tracing on, a consumer span around the handling of `events` (one partition's run of
    them) with a `handle` span inside: the child of the first event's trace context, linked to
    the other events' when they carry others. Nothing when tracing is off."""
    if not tracing_enabled() or not events:
        return _NOT_TRACED
    return _consume_span(topic, events)


_NOT_TRACED: contextlib.nullcontext[None] = contextlib.nullcontext()


def event_span(
    event: ConsumedEvent[Any], **attributes: AttributeValue | None
) -> contextlib.AbstractContextManager[Span | None]:
    """With tracing on, a span for one event of a run that a handler takes one by one: the
    child of that event's own trace context (else of the current span), so what it stages
    continues its own trace rather than the trace of the run's first event. `attributes` name
    what it is about (a batch id, an entity ref). Nothing when tracing is off."""
    if not tracing_enabled():
        return _NOT_TRACED
    return traced(
        f"handle event {event.envelope.event_type}",
        parent=context_from_headers(event.headers),
        attributes={
            "messaging.message.id": str(event.envelope.event_id),
            CORRELATION_ID: str(event.envelope.correlation_id),
            **attributes,
        },
    )


@contextlib.contextmanager
def _consume_span(topic: str, events: Sequence[ConsumedEvent[Any]]) -> Iterator[None]:
    contexts = [context_from_headers(event.headers) for event in events]
    parent = next((context for context in contexts if context is not None), None)
    links = links_to(contexts, besides=parent)
    correlations = {str(event.envelope.correlation_id) for event in events}
    first = events[0]
    with (
        traced(
            f"{topic} process",
            kind=SpanKind.CONSUMER,
            parent=parent,
            links=links,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(first.partition),
                "messaging.batch.message_count": len(events),
                "messaging.kafka.message.key": first.key if len(events) == 1 else None,
                "messaging.message.id": str(first.envelope.event_id) if len(events) == 1 else None,
                CORRELATION_ID: correlations.pop() if len(correlations) == 1 else None,
            },
        ),
        traced(f"handle {first.envelope.event_type}"),
    ):
        yield


def retry_delay(failures: int, minimum: float, maximum: float) -> float:
    """The backoff before the next try: `minimum` doubled per failure, at most `maximum` (the
    exponent is capped, so an outage of any length never overflows a float)."""
    return min(maximum, minimum * 2.0 ** min(failures - 1, 32))


def group_consumer(
    *,
    bootstrap_servers: str,
    group_id: str,
    client_id: str,
    security: KafkaSecurity = PLAINTEXT,
    **options: Any,
) -> AIOKafkaConsumer:
    """A consumer-group member that commits by hand (after the work is done), reads only
    committed records and starts a new group at the earliest offset."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **security.client_kwargs(),
        **options,
    )


async def commit_offsets(consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> bool:
    """Commit the next offsets to read; False (logged) when the broker refused them."""
    try:
        await consumer.commit(dict(offsets))
    except (CommitFailedError, KafkaError) as exc:
        # The partition moved to another member; it will redeliver, and handlers de-duplicate.
        log.warning(
            "offset_commit_failed",
            partitions=sorted(f"{tp.topic}:{tp.partition}:{o}" for tp, o in offsets.items()),
            error=describe_error(exc),
        )
        return False
    return True


def dead_letter_headers(
    *,
    topic: str,
    partition: int,
    offset: int,
    code: str,
    reason: str,
    group_id: str,
    attempts: int = 1,
) -> list[tuple[str, bytes]]:
    """The error headers every dead-lettered message carries."""
    return [
        ("x-dlq-error-code", code.encode()),
        ("x-dlq-attempts", str(attempts).encode()),
        ("x-dlq-error-message", reason[:_MAX_ERROR_HEADER].encode("utf-8", errors="replace")),
        ("x-dlq-original-topic", topic.encode()),
        ("x-dlq-original-partition", str(partition).encode()),
        ("x-dlq-original-offset", str(offset).encode()),
        ("x-dlq-consumer-group", group_id.encode()),
        ("x-dlq-failed-at", datetime.now(UTC).isoformat().encode()),
    ]


def dead_letter_message(
    record: ConsumerRecord[bytes, bytes],
    *,
    code: str,
    reason: str,
    group_id: str,
    attempts: int = 1,
) -> OutgoingMessage:
    """The DLQ message for a record: the original bytes and key plus error headers."""
    headers = dead_letter_headers(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        code=code,
        reason=reason,
        group_id=group_id,
        attempts=attempts,
    )
    headers.extend((k, v) for k, v in (record.headers or ()) if not k.startswith("x-dlq-"))
    key = record_key(record)
    return OutgoingMessage(
        topic=dlq_topic_name(record.topic), value=record.value or b"", key=key, headers=headers
    )


class DeadLetterPublisher:
    """Sends what a consumer gives up on to `<topic>.dlq`, after the topic's responder (if any)
    has answered the sender; both are acknowledged by the broker before the caller commits.

    An answer the broker refuses for good (its topic does not exist, say) is logged and the
    dead letter still goes out, so a bad reply address never stalls a partition; while the
    broker is unreachable each send is tried `send_attempts` times, then the error is raised
    (the consumer stops and the message is redelivered to whoever reads it next).
    """

    def __init__(
        self,
        producer: KafkaEventProducer,
        group_id: str,
        responders: Mapping[str, DeadLetterResponder] | None = None,
        *,
        send_attempts: int = 1,
        on_answered: Callable[[DeadLetter, int], None] | None = None,
    ) -> None:
        self._producer = producer
        self._group_id = group_id
        self._responders = dict(responders or {})
        self._send_attempts = send_attempts
        self._on_answered = on_answered

    async def undecodable(self, item: Undecodable) -> None:
        """Dead-letter a record that could not be decoded (its original bytes)."""
        record = item.record
        letter = DeadLetter(
            record.topic,
            record.partition,
            record.offset,
            record_key(record),
            item.code,
            item.reason,
            1,
            item.envelope,
            item.fields,
        )
        message = dead_letter_message(
            record, code=item.code, reason=item.reason, group_id=self._group_id
        )
        await self._publish(letter, message)

    async def event(self, event: ConsumedEvent[Any], code: str, reason: str, attempts: int) -> None:
        """Dead-letter a decoded event the handler rejected or kept failing on."""
        # The handler saw a decoded event; re-encode it so the DLQ holds a readable original.
        headers = dead_letter_headers(
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
            code=code,
            reason=reason,
            group_id=self._group_id,
            attempts=attempts,
        )
        message = envelope_message(dlq_topic_name(event.topic), event.envelope, event.key)
        letter = DeadLetter(
            event.topic,
            event.partition,
            event.offset,
            event.key,
            code,
            reason,
            attempts,
            raw_envelope(event.envelope),
        )
        await self._publish(
            letter,
            OutgoingMessage(message.topic, message.value, message.key, headers + message.headers),
        )

    async def _publish(self, letter: DeadLetter, message: OutgoingMessage) -> None:
        answers: Sequence[OutgoingMessage] = ()
        responder = self._responders.get(letter.topic)
        if responder is not None:
            try:
                answers = responder(letter)
            except Exception as exc:  # a bug in a responder must not stall the partition
                log.error(
                    "dead_letter_responder_failed", topic=letter.topic, error=describe_error(exc)
                )
        answered = 0
        if answers:
            try:
                await send_acknowledged(self._producer, answers, attempts=self._send_attempts)
            except KafkaError as exc:
                if is_transient(exc):
                    raise
                log.warning(
                    "dead_letter_answer_rejected", topic=letter.topic, error=describe_error(exc)
                )
            else:
                answered = len(answers)
        await send_acknowledged(self._producer, [message], attempts=self._send_attempts)
        if answered and self._on_answered is not None:
            self._on_answered(letter, answered)
        DEAD_LETTERED.labels(topic=letter.topic, reason=letter.code).inc()
        log.warning(
            "message_dead_lettered",
            topic=letter.topic,
            partition=letter.partition,
            offset=letter.offset,
            code=letter.code,
            reason=letter.reason,
            attempts=letter.attempts,
            event_id=str(letter.envelope.event_id) if letter.envelope is not None else None,
            answered=answered,
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
        security: KafkaSecurity = PLAINTEXT,
        group_id: str,
        payloads: Mapping[str, type[BaseModel]],
        handler: BatchHandler,
        producer: KafkaEventProducer,
        client_id: str,
        max_batch_size: int = 200,
        fetch_timeout_ms: int = 200,
        retry_backoff_seconds: tuple[float, float] = (0.2, 5.0),
        max_attempts: int = 5,
        responders: Mapping[str, DeadLetterResponder] | None = None,
        group_instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        fetch_max_wait_ms: int = 500,
        lag_refresh_seconds: float = _LAG_REFRESH_SECONDS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._payloads = dict(payloads)
        self._handler = handler
        self._max_batch_size = max_batch_size
        self._fetch_timeout_ms = fetch_timeout_ms
        self._backoff_min, self._backoff_max = retry_backoff_seconds
        self._max_attempts = max_attempts
        self._dead_letters = DeadLetterPublisher(producer, group_id, responders)
        self._security = security
        self._group_id = group_id
        # Per partition: the offset that keeps failing and how often it failed (its own data's
        # failures count towards max_attempts; transient failures only lengthen the backoff).
        self._attempts: dict[TopicPartition, tuple[int, int, int]] = {}
        # Partitions paused after a failure, and when to read them again.
        self._retry_at: dict[TopicPartition, float] = {}
        self._next_offsets: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._consumer = group_consumer(
            bootstrap_servers=bootstrap_servers,
            security=security,
            group_id=group_id,
            client_id=client_id,
            group_instance_id=group_instance_id,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
            max_poll_records=max_batch_size,
            # How long the broker may hold a fetch for partitions without data. While one
            # partition's records are still being handled, the next fetch covers only the idle
            # ones; a shorter wait lets a busy partition be fetched again sooner.
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._consumer.subscribe(
            list(self._payloads), listener=GroupListener(GroupMembership(group_id))
        )
        self._lag = ConsumerLagReporter(self._consumer, group_id, lag_refresh_seconds)
        self._running = False

    @property
    def consumer(self) -> AIOKafkaConsumer:
        """The underlying consumer (for assignment inspection in tests and health checks)."""
        return self._consumer

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until `stop()`; always leaves the group cleanly.

        The next fetch is taken and decoded while the handler works on the previous one (its
        time is mostly spent waiting on the database), so fetching and decoding cost no wall
        time. Fetches are still handled one after another and offsets committed in order; when
        a partition's handler fails, what was fetched for it meanwhile is dropped, the partition
        is paused for its backoff and then read again from the failed message. A refusal by the
        broker's ACLs raises `KafkaAccessError`.
        """
        with acl_refusals(self._security, self._group_id):
            await self._run()

    async def _run(self) -> None:
        await self._consumer.start()
        self._running = True
        in_hand: asyncio.Task[dict[TopicPartition, int]] | None = None
        try:
            while not self._stopping.is_set():
                self._resume_due()
                fetched = await self._consumer.getmany(
                    timeout_ms=self._fetch_timeout_ms, max_records=self._max_batch_size
                )
                decoded = {
                    tp: [decode_or_undecodable(r, self._payloads[r.topic]) for r in records]
                    for tp, records in fetched.items()
                }
                if in_hand is not None:
                    rewind = await in_hand
                    in_hand = None
                    # What was fetched meanwhile for a failed partition lies past the failure:
                    # drop it, and read the partition again from the failed message once its
                    # backoff is over.
                    for tp, offset in rewind.items():
                        decoded.pop(tp, None)
                        # (A partition revoked meanwhile is read by its new owner instead.)
                        with contextlib.suppress(IllegalStateError):
                            self._consumer.seek(tp, offset)
                            self._consumer.pause(tp)
                if decoded and not self._stopping.is_set():
                    in_hand = asyncio.create_task(self._process_fetch(decoded))
                await self._refresh_lag()
            if in_hand is not None:
                await in_hand  # stopping: finish the fetch in hand and commit its offsets
        finally:
            if in_hand is not None and not in_hand.done():
                in_hand.cancel()  # cancelled or failed: what it did not commit is redelivered
            self._running = False
            await self._consumer.stop()

    def _resume_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, at in self._retry_at.items() if at <= now]
        for tp in due:
            del self._retry_at[tp]
            with contextlib.suppress(IllegalStateError):
                if tp in self._consumer.assignment():
                    self._consumer.resume(tp)

    async def _process_fetch(
        self, decoded: dict[TopicPartition, list[ConsumedEvent[Any] | Undecodable]]
    ) -> dict[TopicPartition, int]:
        """Handle one fetch partition by partition; the offsets to redeliver from, by partition."""
        rewind: dict[TopicPartition, int] = {}
        for tp, items in decoded.items():
            if self._stopping.is_set():
                break
            failed_at = await self._process_partition(tp, items)
            if failed_at is not None:
                rewind[tp] = failed_at
        return rewind

    async def _process_partition(
        self, tp: TopicPartition, items: list[ConsumedEvent[Any] | Undecodable]
    ) -> int | None:
        """Runs of decoded events go to the handler, undecodable records to the DLQ, in offset
        order; the offset of the message that failed (to redeliver from), if one did."""
        run: list[ConsumedEvent[Any]] = []
        for item in items:
            if isinstance(item, ConsumedEvent):
                run.append(item)
                continue
            failed_at = await self._handle_run(tp, run) if run else None
            if failed_at is not None:
                return failed_at
            run = []
            await self._dead_letters.undecodable(item)
            await self._commit(tp, item.record.offset + 1)
        return await self._handle_run(tp, run) if run else None

    async def _handle_run(self, tp: TopicPartition, run: list[ConsumedEvent[Any]]) -> int | None:
        """Handle contiguous decoded events; the offset to redeliver from if one failed."""
        try:
            with consume_span(tp.topic, run):
                await self._handler(run)
        except RejectMessage as rejection:
            if len(run) > 1:
                return await self._handle_one_by_one(tp, run)
            await self._dead_letters.event(rejection.event, rejection.code, rejection.reason, 1)
        except Exception as exc:
            if len(run) > 1:
                return await self._handle_one_by_one(tp, run)
            event = run[0]
            attempts = self._record_failure(tp, event, exc)
            if attempts is not None and attempts >= self._max_attempts:
                await self._dead_letters.event(event, HANDLER_FAILED, describe_error(exc), attempts)
            else:
                self._schedule_retry(tp, event, exc, attempts)
                return event.offset
        self._attempts.pop(tp, None)
        CONSUMER_MESSAGES.labels(topic=tp.topic, outcome="handled").inc(len(run))
        await self._commit(tp, run[-1].offset + 1)
        return None

    async def _handle_one_by_one(
        self, tp: TopicPartition, run: list[ConsumedEvent[Any]]
    ) -> int | None:
        for event in run:
            failed_at = await self._handle_run(tp, [event])
            if failed_at is not None:
                return failed_at
        return None

    def _record_failure(
        self, tp: TopicPartition, event: ConsumedEvent[Any], exc: Exception
    ) -> int | None:
        """Count a failure of `event`; its data-caused attempts so far, None if transient."""
        offset, attempts, transient = self._attempts.get(tp, (event.offset, 0, 0))
        if offset != event.offset:
            attempts, transient = 0, 0
        if is_transient(exc):
            self._attempts[tp] = (event.offset, attempts, transient + 1)
            return None
        self._attempts[tp] = (event.offset, attempts + 1, transient)
        return attempts + 1

    def _schedule_retry(
        self, tp: TopicPartition, event: ConsumedEvent[Any], exc: Exception, attempts: int | None
    ) -> None:
        _, data_failures, transient_failures = self._attempts[tp]
        failures = data_failures + transient_failures
        delay = retry_delay(failures, self._backoff_min, self._backoff_max)
        self._retry_at[tp] = time.monotonic() + delay
        outcome = "retried" if attempts is not None else "retried_transient"
        CONSUMER_MESSAGES.labels(topic=tp.topic, outcome=outcome).inc()
        log.warning(
            "handler_failed_will_redeliver",
            topic=tp.topic,
            partition=tp.partition,
            offset=event.offset,
            event_id=str(event.envelope.event_id),
            correlation_id=str(event.envelope.correlation_id),
            error=describe_error(exc),
            transient=attempts is None,
            attempt=attempts if attempts is not None else transient_failures,
            max_attempts=self._max_attempts if attempts is not None else None,
            delay_seconds=round(delay, 3),
        )

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        if await commit_offsets(self._consumer, {tp: next_offset}):
            self._next_offsets[tp] = next_offset

    async def _refresh_lag(self) -> None:
        await self._lag.maybe_report(lambda: self._next_offsets)


class ConsumerLagReporter:
    """Sets `huleedu_consumer_lag_messages` now and then: each assigned partition's end offset
    minus the offset this member has committed (or will commit next)."""

    def __init__(
        self, consumer: AIOKafkaConsumer, group_id: str, interval: float = _LAG_REFRESH_SECONDS
    ) -> None:
        self._consumer = consumer
        self._group_id = group_id
        self._interval = interval
        self._reported = 0.0

    async def maybe_report(self, positions: Callable[[], Mapping[TopicPartition, int]]) -> None:
        """Report, unless the last report is younger than the interval; never raises.

        `positions` (each partition's committed or next-to-commit offset) is only asked for when
        a report is due: callers run this on every pass of their loop."""
        now = time.monotonic()
        if now - self._reported < self._interval:
            return
        self._reported = now
        current = positions()
        assigned = [tp for tp in self._consumer.assignment() if tp in current]
        if not assigned:
            return
        try:
            ends = await asyncio.wait_for(self._consumer.end_offsets(assigned), timeout=2.0)
        except (KafkaError, TimeoutError, IllegalStateError):
            return  # the broker is away; the gauge keeps its last value
        for tp, end in ends.items():
            CONSUMER_LAG.labels(
                group=self._group_id, topic=tp.topic, partition=str(tp.partition)
            ).set(max(0, end - current[tp]))


class GroupMembership:
    """What a consumer group member tells the metrics on a rebalance: every assignment after
    the first counts as a rebalance, and the lag series of partitions it gives up are removed
    (their new owner reports them)."""

    def __init__(self, group_id: str) -> None:
        self._group_id = group_id
        self._assignments = 0

    def revoked(self, partitions: set[TopicPartition]) -> None:
        """Forget the lag of partitions this member no longer owns."""
        for tp in partitions:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self._group_id, tp.topic, str(tp.partition))

    def assigned(self, partitions: set[TopicPartition]) -> None:
        """Count an assignment (the first one is joining, not a rebalance)."""
        log.info(
            "partitions_assigned",
            group=self._group_id,
            partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in partitions),
        )
        self._assignments += 1
        if self._assignments > 1:
            CONSUMER_REBALANCES.labels(group=self._group_id).inc()
            log.info(
                "consumer_group_rebalanced",
                group=self._group_id,
                partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in partitions),
            )


class GroupListener:
    """A runner's rebalance listener: `before_revoke` (finish and commit the work in hand for
    the partitions leaving) runs before the membership forgets them.

    Registered as a virtual `ConsumerRebalanceListener` (below): aiokafka ships no type hints,
    so mypy strict cannot see its ABC to subclass; aiokafka's `subscribe` checks `isinstance`.
    """

    def __init__(
        self,
        membership: GroupMembership,
        before_revoke: Callable[[set[TopicPartition]], Awaitable[None]] | None = None,
    ) -> None:
        self._membership = membership
        self._before_revoke = before_revoke

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Finish what is in hand for the partitions leaving, then forget their lag."""
        if self._before_revoke is not None:
            await self._before_revoke(set(revoked))
        self._membership.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Count the assignment."""
        self._membership.assigned(set(assigned))


ConsumerRebalanceListener.register(GroupListener)


def raw_envelope(envelope: EventEnvelope[Any]) -> RawEnvelope:
    """A decoded envelope in the untyped form a responder reads."""
    return RawEnvelope.model_validate(envelope.model_dump(mode="json"))
