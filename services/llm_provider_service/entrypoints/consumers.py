"""The Kafka worker: many requests in flight, one callback each, commits in offset order.

Why its own loop: the shared `KafkaConsumerRunner` handles a partition's records one batch at a
time, which would make a slow LLM call block everything behind it. Here each record becomes a
task (up to `LLM_MAX_IN_FLIGHT`); fetching stops while the limit is reached (backpressure); a
partition's offset is committed only up to the first record whose callback the broker has not
acknowledged yet, so a crash redelivers unanswered requests and never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from pydantic import BaseModel, TypeAdapter, ValidationError

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.envelope import (
    EnvelopeDecodeError,
    PayloadValidationError,
    RawEnvelope,
    new_event,
)
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMRubricRequestV1,
    LLMRubricResultV1,
)
from common_core.limits import MAX_METADATA_BYTES, TopicName, storable_json_problem
from common_core.runtime.database import is_database_unavailable
from common_core.runtime.error_text import describe_error
from common_core.runtime.kafka_consumer import (
    ConsumedEvent,
    ConsumerLagReporter,
    GroupMembership,
    dead_letter_message,
    decode_record,
    raw_envelope,
    record_key,
)
from common_core.runtime.kafka_offsets import OffsetTracker
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage, envelope_message
from common_core.runtime.logging import bound_log_context
from common_core.runtime.metrics import CONSUMER_MESSAGES, DEAD_LETTERED
from common_core.runtime.providers import instance_client_id
from common_core.topics import Topic
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.batching import BatchIntake
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.metrics import CALLBACKS_PUBLISHED, IN_FLIGHT

log = structlog.get_logger(__name__)

_PUBLISH_ATTEMPTS = 8
_PUBLISH_BACKOFF_MAX = 5.0
_ENQUEUE_BACKOFF_MAX = 5.0


class CallbackUndeliverable(Exception):  # noqa: N818 - a decision, like RejectMessage
    """Neither the callback nor the dead letter could be published: the process must restart
    so the request is redelivered."""


def request_topics(settings: Settings) -> dict[str, type[BaseModel]]:
    """The topics the worker consumes and the payload each carries."""
    return {
        settings.topic(Topic.LLM_COMPARISON_REQUESTED): LLMComparisonRequestV1,
        settings.topic(Topic.LLM_RUBRIC_REQUESTED): LLMRubricRequestV1,
    }


class RequestWorker:
    """Consumes comparison and rubric requests and publishes one callback per request."""

    def __init__(
        self,
        settings: Settings,
        answerer: RequestAnswerer,
        producer: KafkaEventProducer,
        batches: BatchIntake | None = None,
    ) -> None:
        self._settings = settings
        self._answerer = answerer
        self._producer = producer
        self._batches = batches
        self._group_id = settings.llm_consumer_group
        self._payloads = request_topics(settings)
        self._max_in_flight = settings.llm_max_in_flight
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._lag: ConsumerLagReporter | None = None
        self._crash: BaseException | None = None
        self._commit_interval = settings.llm_commit_interval_seconds
        self._last_commit = 0.0

    @property
    def in_flight(self) -> int:
        """Requests taken whose callback is not yet acknowledged."""
        return len(self._tasks)

    def stop(self) -> None:
        """Stop fetching; `run` then finishes the requests in flight (bounded), commits, leaves."""
        self._stopping.set()

    async def check_kafka(self) -> None:
        """Readiness: the consumer runs and the broker answers a metadata request."""
        if self._consumer is None:
            raise RuntimeError("the consumer has not started")
        await self._consumer.topics()

    async def run(self) -> None:
        """Consume until `stop()`."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=self._group_id,
            client_id=instance_client_id(SERVICE_NAME, self._settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self._max_in_flight,
            session_timeout_ms=self._settings.llm_kafka_session_timeout_ms,
            heartbeat_interval_ms=max(300, self._settings.llm_kafka_session_timeout_ms // 4),
        )
        consumer.subscribe(
            list(self._payloads), listener=_Rebalance(self, GroupMembership(self._group_id))
        )
        await consumer.start()
        self._consumer = consumer
        self._lag = ConsumerLagReporter(consumer, self._group_id)
        log.info("worker_started", topics=list(self._payloads), max_in_flight=self._max_in_flight)
        try:
            await self._consume(consumer)
        finally:
            await self._drain(consumer)
            self._consumer = None
            await consumer.stop()
            log.info("worker_stopped")
        if self._crash is not None:
            raise self._crash

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set() and self._crash is None:
                free = self._max_in_flight - len(self._tasks)
                if free <= 0:
                    # Backpressure: no fetching until a request finishes.
                    await self._wait_for_slot(stop_wait)
                else:
                    fetched = await consumer.getmany(
                        timeout_ms=self._settings.llm_fetch_timeout_ms, max_records=free
                    )
                    for tp, records in fetched.items():
                        for record in records:
                            self._start(tp, record)
                if time.monotonic() - self._last_commit >= self._commit_interval:
                    await self._commit(consumer)
                await self._report_lag(consumer)
        finally:
            stop_wait.cancel()

    async def _wait_for_slot(self, stop_wait: asyncio.Future[Any]) -> None:
        self._slot_freed.clear()
        slot: asyncio.Future[Any] = asyncio.ensure_future(self._slot_freed.wait())
        try:
            await asyncio.wait([slot, stop_wait], return_when=asyncio.FIRST_COMPLETED)
        finally:
            slot.cancel()

    def _start(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        self._tracker.taken(tp, record.offset)
        task = asyncio.create_task(self._handle(record), name=f"llm-request-{tp}-{record.offset}")
        self._tasks[task] = tp
        IN_FLIGHT.set(len(self._tasks))
        offset = record.offset
        task.add_done_callback(lambda done: self._finished(done, offset))

    def _finished(self, task: asyncio.Task[None], offset: int) -> None:
        tp = self._tasks.pop(task)
        IN_FLIGHT.set(len(self._tasks))
        self._slot_freed.set()
        if task.cancelled():
            return  # not answered: stays uncommitted and is redelivered
        exc = task.exception()
        if exc is not None:
            log.error("request_task_failed", error_type=type(exc).__name__, exc_info=exc)
            self._crash = self._crash or exc
            self._stopping.set()
            return
        self._tracker.done(tp, offset)

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode_record(record, self._payloads[record.topic])
        except PayloadValidationError as exc:
            # Tell the sender which field was wrong (an error callback), then park the bytes.
            answer = (
                rejection_callback(
                    exc.envelope,
                    self._payloads[record.topic],
                    ErrorCode.VALIDATION,
                    "request rejected: "
                    + "; ".join(f"{f.field}: {f.reason}" for f in exc.fields[:5]),
                    fields=[{"field": f.field, "reason": f.reason} for f in exc.fields],
                    key=record_key(record),
                )
                if exc.envelope is not None
                else None
            )
            await self._dead_letter(record, code=exc.code, reason=str(exc), answer=answer)
            return
        except EnvelopeDecodeError as exc:
            await self._dead_letter(record, code=exc.code, reason=str(exc))
            return
        envelope = event.envelope
        with bound_log_context(
            correlation_id=envelope.correlation_id,
            event_id=envelope.event_id,
            request_id=getattr(envelope.data, "request_id", None),
        ):
            try:
                if self._batches is not None and self._batches.takes(envelope.data):
                    # Batch mode: handled once recorded; the callback leaves through the outbox.
                    await self._enqueue(self._batches, event)
                    CONSUMER_MESSAGES.labels(topic=record.topic, outcome="queued").inc()
                    return
                callback, kind = await self._answer(event)
            except Exception as exc:
                # A bug, not a provider failure (those become error callbacks): answer the sender
                # with an internal error and park the request in the DLQ instead of crash-looping
                # on it.
                log.error("request_unanswerable", error=describe_error(exc), exc_info=exc)
                answer = rejection_callback(
                    raw_envelope(envelope),
                    self._payloads[record.topic],
                    ErrorCode.INTERNAL,
                    f"the request could not be answered: unexpected {type(exc).__name__}",
                    fields=[],
                    key=record_key(record),
                )
                await self._dead_letter(
                    record, code="internal", reason=type(exc).__name__, answer=answer
                )
                return
            try:
                await self._publish(callback)
            except CallbackUndeliverable:
                raise
            except Exception as exc:
                log.warning("callback_rejected_by_broker", error=describe_error(exc))
                await self._dead_letter(
                    record, code="callback_undeliverable", reason=describe_error(exc)
                )
                return
            CALLBACKS_PUBLISHED.labels(kind=kind).inc()
            CONSUMER_MESSAGES.labels(topic=record.topic, outcome="handled").inc()

    async def _enqueue(self, batches: BatchIntake, event: ConsumedEvent[Any]) -> None:
        """Record a batch-mode request, retrying while the database is unreachable (the record
        stays uncommitted meanwhile; a shutdown cancels the wait and it is redelivered). Any
        other failure is a bug: answered and dead-lettered like an unanswerable request."""
        attempt = 0
        while True:
            try:
                await batches.enqueue(event.envelope, event.key)
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                attempt += 1
                delay = min(_ENQUEUE_BACKOFF_MAX, 0.2 * 2 ** min(attempt, 8))
                log.warning("batch_enqueue_retry", attempt=attempt, error=describe_error(exc))
                await asyncio.sleep(delay * random.uniform(0.5, 1))
            else:
                return

    async def _answer(self, event: ConsumedEvent[Any]) -> tuple[OutgoingMessage, str]:
        request = event.envelope.data
        correlation_id = event.envelope.correlation_id
        result: LLMComparisonResultV1 | LLMRubricResultV1
        if isinstance(request, LLMComparisonRequestV1):
            result = await self._answerer.answer_comparison(request, correlation_id)
            kind = "comparison"
        else:
            result = await self._answerer.answer_rubric(request, correlation_id)
            kind = "rubric"
        callback = new_event(
            request.callback_topic,
            result,
            source_service=SERVICE_NAME,
            correlation_id=correlation_id,
        )
        outcome = result.error_detail
        key = event.key if event.key is not None else str(request.request_id)
        log.info(
            "request_answered",
            kind=kind,
            error_code=outcome.code.value if outcome is not None else None,
        )
        return envelope_message(request.callback_topic, callback, key), kind

    async def _publish(self, message: OutgoingMessage) -> None:
        """Send and wait for the broker's ack, retrying transient broker errors."""
        for attempt in range(1, _PUBLISH_ATTEMPTS + 1):
            try:
                await self._producer.send(message)
            except (KafkaTimeoutError, KafkaConnectionError) as exc:
                error: KafkaError = exc
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                error = exc
            else:
                return
            delay = min(_PUBLISH_BACKOFF_MAX, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1)
            log.warning("publish_retry", attempt=attempt, error=type(error).__name__)
            await asyncio.sleep(delay)
        raise CallbackUndeliverable(f"could not publish to {message.topic}")

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        *,
        code: str,
        reason: str,
        answer: OutgoingMessage | None = None,
    ) -> None:
        """Park the record in `<topic>.dlq`; first publish `answer` (an error callback) when the
        sender can be told, so nobody waits for ever on it."""
        if answer is not None:
            try:
                await self._publish(answer)
            except CallbackUndeliverable:
                raise
            except Exception as exc:  # e.g. the callback topic does not exist
                log.warning("error_callback_rejected_by_broker", error=describe_error(exc))
            else:
                CALLBACKS_PUBLISHED.labels(kind="rejection").inc()
        await self._publish_dead_letter(
            dead_letter_message(record, code=code, reason=reason, group_id=self._group_id)
        )
        DEAD_LETTERED.labels(topic=record.topic, reason=code).inc()
        log.warning(
            "message_dead_lettered",
            topic=record.topic,
            offset=record.offset,
            code=code,
            answered=answer is not None,
        )

    async def _publish_dead_letter(self, message: OutgoingMessage) -> None:
        try:
            await self._publish(message)
        except KafkaError as exc:
            raise CallbackUndeliverable(f"could not dead-letter to {message.topic}") from exc

    async def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        if self._lag is None:
            return

        def positions() -> dict[TopicPartition, int]:
            return {
                tp: point
                for tp in consumer.assignment()
                if (point := self._tracker.commit_point(tp)) is not None
            }

        await self._lag.maybe_report(positions)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        self._last_commit = time.monotonic()
        moves = self._tracker.uncommitted()
        if not moves:
            return
        try:
            await consumer.commit(moves)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance moved the partition: its new owner redelivers; duplicates are allowed.
            log.warning("offset_commit_failed", error=describe_error(exc))
            return
        self._tracker.committed(moves)

    async def _drain(self, consumer: AIOKafkaConsumer) -> None:
        """Finish the requests in flight within the grace period, then commit what is done."""
        if self._tasks:
            log.info("worker_draining", in_flight=len(self._tasks))
            await asyncio.wait(list(self._tasks), timeout=self._settings.llm_shutdown_grace_seconds)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        with contextlib.suppress(KafkaError):
            await self._commit(consumer)

    async def finish_partitions(self, revoked: set[TopicPartition]) -> None:
        """Rebalance: finish (bounded) what is in flight for partitions leaving, commit, forget."""
        leaving = [t for t, tp in self._tasks.items() if tp in revoked]
        if leaving:
            await asyncio.wait(leaving, timeout=self._settings.llm_shutdown_grace_seconds)
        if self._consumer is not None:
            await self._commit(self._consumer)
        self._tracker.forget(revoked)


def rejection_callback(
    envelope: RawEnvelope,
    request_model: type[BaseModel],
    code: ErrorCode,
    message: str,
    *,
    fields: list[dict[str, str]],
    key: str | None,
) -> OutgoingMessage | None:
    """The error callback for a request that will not be answered, read from its untyped
    envelope; None when the request names no usable request id or callback topic."""
    data = envelope.data
    try:
        request_id = UUID(str(data.get("request_id")))
        callback_topic = _CALLBACK_TOPIC.validate_python(data.get("callback_topic"))
    except (ValueError, ValidationError):
        return None
    metadata = data.get("request_metadata")
    if not isinstance(metadata, dict) or storable_json_problem(metadata, MAX_METADATA_BYTES):
        metadata = {}  # what cannot be echoed safely is not echoed
    error = ErrorDetail(
        code=code,
        message=message,
        correlation_id=envelope.correlation_id,
        service=SERVICE_NAME,
        operation="validate_request" if code is ErrorCode.VALIDATION else "answer_request",
        retryable=False,
        details={"fields": fields, "field": fields[0]["field"] if fields else None},
    )
    result_model: type[LLMComparisonResultV1] | type[LLMRubricResultV1] = (
        LLMComparisonResultV1 if request_model is LLMComparisonRequestV1 else LLMRubricResultV1
    )
    result = result_model(
        request_id=request_id,
        request_metadata=metadata,
        error_detail=error,
        provider="none",
        model="none",
    )
    callback = new_event(
        callback_topic,
        result,
        source_service=SERVICE_NAME,
        correlation_id=envelope.correlation_id,
        event_id=uuid5(NAMESPACE_URL, f"huleedu:llm-request-rejected:{envelope.event_id}"),
    )
    return envelope_message(callback_topic, callback, key or str(request_id))


_CALLBACK_TOPIC: TypeAdapter[str] = TypeAdapter(TopicName)


class _Rebalance:
    """The worker's rebalance listener: finishes and commits the partitions leaving.

    aiokafka ships no type hints, so its `ConsumerRebalanceListener` ABC is `Any` to mypy and
    cannot be subclassed in strict mode; the class is registered as a virtual subclass instead
    (below), which is what aiokafka's `isinstance` check in `subscribe` asks for.
    """

    def __init__(self, worker: RequestWorker, membership: GroupMembership) -> None:
        self._worker = worker
        self._membership = membership

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.finish_partitions(set(revoked))
        self._membership.revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info(
            "partitions_assigned", partitions=sorted(f"{t.topic}:{t.partition}" for t in assigned)
        )
        self._membership.assigned(set(assigned))


ConsumerRebalanceListener.register(_Rebalance)
