"""A Kafka consumer runner for slow handlers: many messages in flight, commits in offset order.

`KafkaConsumerRunner` hands a partition's records to its handler one batch at a time, so one slow
handler call (an LLM request takes seconds) holds up everything behind it. Here every record
becomes a task, up to `max_in_flight` at once; fetching stops while the limit is reached
(backpressure). A partition's offset is committed only up to its lowest record still being
handled (`OffsetTracker`), so records finish in any order and a crash redelivers the unfinished
ones, never loses one.

Decisions per message, as in `KafkaConsumerRunner` (dead letters, responders, lag and rebalance
metrics are the same shared pieces):
- the handler returns: the record is done;
- the handler raises `RejectMessage`: the record goes to `<topic>.dlq` (its responder answers the
  sender first), then it is done;
- the handler raises a transient infrastructure error (`failures.is_transient`): the record is
  handled again after a backoff, for as long as it takes (it keeps its slot meanwhile);
- the handler raises anything else: the same, but at most `max_attempts` times; then it is
  dead-lettered with `handler_failed`;
- the bytes cannot be decoded or fail schema validation: dead-lettered, done;
- the handler raises `StopConsumer`, or a dead letter cannot be published: the runner stops and
  `run` raises it; the record stays uncommitted and is redelivered after the restart.

On a rebalance the records in flight for the partitions leaving get the shutdown grace to finish;
the commit then goes up to the lowest one still running, and the partition's state is forgotten.
A record still running keeps running, uncommitted: the partition's next owner (another member, or
this one again) handles it again, so a slow record is handled at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from common_core.runtime.error_text import describe_error
from common_core.runtime.failures import is_transient
from common_core.runtime.kafka_consumer import (
    HANDLER_FAILED,
    ConsumedEvent,
    ConsumerLagReporter,
    DeadLetter,
    DeadLetterPublisher,
    DeadLetterResponder,
    GroupListener,
    GroupMembership,
    RejectMessage,
    Undecodable,
    commit_offsets,
    consume_span,
    decode_or_undecodable,
    group_consumer,
    retry_delay,
)
from common_core.runtime.kafka_offsets import OffsetTracker
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity, acl_refusals
from common_core.runtime.metrics import CONSUMER_MESSAGES

log = structlog.get_logger(__name__)

EventHandler = Callable[[ConsumedEvent[Any]], Awaitable[None]]
"""Handles one decoded event; see the module docstring for what its outcomes mean."""


class StopConsumer(Exception):  # noqa: N818 - a decision, like RejectMessage
    """Raised by a handler when the process must restart (its answer can be neither published
    nor dead-lettered): the runner stops and the message is redelivered."""


class ConcurrentConsumerRunner:
    """Consumes topics in a group, handling up to `max_in_flight` records at once."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        security: KafkaSecurity = PLAINTEXT,
        group_id: str,
        client_id: str,
        payloads: Mapping[str, type[BaseModel]],
        handler: EventHandler,
        producer: KafkaEventProducer,
        max_in_flight: int,
        responders: Mapping[str, DeadLetterResponder] | None = None,
        max_attempts: int = 5,
        retry_backoff_seconds: tuple[float, float] = (0.2, 5.0),
        fetch_timeout_ms: int = 200,
        commit_interval_seconds: float = 1.0,
        shutdown_grace_seconds: float = 10.0,
        session_timeout_ms: int = 10_000,
        heartbeat_interval_ms: int = 3_000,
        dead_letter_send_attempts: int = 8,
        lag_refresh_seconds: float = 10.0,
        on_answered: Callable[[DeadLetter, int], None] | None = None,
        on_in_flight: Callable[[int], None] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._group_id = group_id
        self._security = security
        self._payloads = dict(payloads)
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._max_attempts = max_attempts
        self._backoff_min, self._backoff_max = retry_backoff_seconds
        self._fetch_timeout_ms = fetch_timeout_ms
        self._commit_interval = commit_interval_seconds
        self._grace = shutdown_grace_seconds
        self._on_in_flight = on_in_flight
        self._dead_letters = DeadLetterPublisher(
            producer,
            group_id,
            responders,
            send_attempts=dead_letter_send_attempts,
            on_answered=on_answered,
        )
        self._consumer = group_consumer(
            bootstrap_servers=bootstrap_servers,
            security=security,
            group_id=group_id,
            client_id=client_id,
            max_poll_records=max_in_flight,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._consumer.subscribe(
            list(self._payloads),
            listener=GroupListener(GroupMembership(group_id), self._finish_partitions),
        )
        self._lag = ConsumerLagReporter(self._consumer, group_id, lag_refresh_seconds)
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._crash: BaseException | None = None
        self._started = False
        self._last_commit = 0.0

    @property
    def in_flight(self) -> int:
        """Records taken and not yet done."""
        return len(self._tasks)

    def stop(self) -> None:
        """Stop fetching; `run` then finishes the records in flight (bounded), commits, leaves."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until `stop()`; raises what stopped it otherwise (see `StopConsumer`; a
        refusal by the broker's ACLs is a `KafkaAccessError`)."""
        with acl_refusals(self._security, self._group_id):
            await self._run()

    async def _run(self) -> None:
        await self._consumer.start()
        self._started = True
        log.info("consumer_started", group=self._group_id, max_in_flight=self._max_in_flight)
        try:
            await self._consume()
        finally:
            await self._drain()
            self._started = False
            await self._consumer.stop()
            log.info("consumer_stopped", group=self._group_id)
        if self._crash is not None:
            raise self._crash

    async def _consume(self) -> None:
        stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        try:
            while not self._stopping.is_set() and self._crash is None:
                free = self._max_in_flight - len(self._tasks)
                if free <= 0:
                    await self._wait_for_slot(stop_wait)  # backpressure: no fetching meanwhile
                else:
                    fetched = await self._consumer.getmany(
                        timeout_ms=self._fetch_timeout_ms, max_records=free
                    )
                    for tp, records in fetched.items():
                        for record in records:
                            self._start(tp, record)
                if time.monotonic() - self._last_commit >= self._commit_interval:
                    await self._commit()
                await self._lag.maybe_report(self._positions)
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
        task = asyncio.create_task(self._process(record), name=f"consume-{tp}-{record.offset}")
        self._tasks[task] = tp
        self._report_in_flight()
        offset = record.offset
        task.add_done_callback(lambda done: self._finished(done, offset))

    def _finished(self, task: asyncio.Task[None], offset: int) -> None:
        tp = self._tasks.pop(task)
        self._report_in_flight()
        self._slot_freed.set()
        if task.cancelled():
            return  # not finished: stays uncommitted and is redelivered
        exc = task.exception()
        if exc is not None:
            log.error("consumer_task_failed", error_type=type(exc).__name__, exc_info=exc)
            self._crash = self._crash or exc
            self._stopping.set()
            return
        self._tracker.done(tp, offset)

    def _report_in_flight(self) -> None:
        if self._on_in_flight is not None:
            self._on_in_flight(len(self._tasks))

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Decode and handle one record until it is done (handled or dead-lettered)."""
        item = decode_or_undecodable(record, self._payloads[record.topic])
        if isinstance(item, Undecodable):
            await self._dead_letters.undecodable(item)
            return
        attempts = transient_failures = 0
        while True:
            try:
                with consume_span(item.topic, [item]):
                    await self._handler(item)
            except RejectMessage as rejection:
                await self._dead_letters.event(
                    rejection.event, rejection.code, rejection.reason, attempts + 1
                )
                return
            except StopConsumer:
                raise
            except Exception as exc:
                if is_transient(exc):
                    transient_failures += 1
                else:
                    attempts += 1
                    if attempts >= self._max_attempts:
                        await self._dead_letters.event(
                            item, HANDLER_FAILED, describe_error(exc), attempts
                        )
                        return
                await self._back_off(item, exc, attempts, transient_failures)
            else:
                CONSUMER_MESSAGES.labels(topic=item.topic, outcome="handled").inc()
                return

    async def _back_off(
        self, event: ConsumedEvent[Any], exc: Exception, attempts: int, transient_failures: int
    ) -> None:
        transient = is_transient(exc)
        failures = attempts + transient_failures
        delay = retry_delay(failures, self._backoff_min, self._backoff_max)
        CONSUMER_MESSAGES.labels(
            topic=event.topic, outcome="retried_transient" if transient else "retried"
        ).inc()
        log.warning(
            "handler_failed_will_retry",
            topic=event.topic,
            partition=event.partition,
            offset=event.offset,
            event_id=str(event.envelope.event_id),
            correlation_id=str(event.envelope.correlation_id),
            error=describe_error(exc),
            transient=transient,
            attempt=transient_failures if transient else attempts,
            max_attempts=None if transient else self._max_attempts,
            delay_seconds=round(delay, 3),
        )
        # A shutdown cancels the wait: the record stays uncommitted and is redelivered.
        await asyncio.sleep(delay * random.uniform(0.5, 1))

    def _positions(self) -> dict[TopicPartition, int]:
        return {
            tp: point
            for tp in self._consumer.assignment()
            if (point := self._tracker.commit_point(tp)) is not None
        }

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        moves = self._tracker.uncommitted()
        if moves and await commit_offsets(self._consumer, moves):
            self._tracker.committed(moves)

    async def _drain(self) -> None:
        """Finish the records in flight within the grace period, then commit what is done."""
        if self._tasks:
            log.info("consumer_draining", group=self._group_id, in_flight=len(self._tasks))
            await asyncio.wait(list(self._tasks), timeout=self._grace)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        with contextlib.suppress(KafkaError):
            await self._commit()

    async def _finish_partitions(self, revoked: set[TopicPartition]) -> None:
        """Rebalance: finish (bounded) what is in flight for partitions leaving, commit, forget."""
        leaving = [task for task, tp in self._tasks.items() if tp in revoked]
        if leaving:
            await asyncio.wait(leaving, timeout=self._grace)
        if self._started:
            await self._commit()
        self._tracker.forget(revoked)
