"""Dead letters: read a `<topic>.dlq` without side effects, republish letters to their topic.

Reading assigns every partition of the dead-letter topic by hand (no consumer group, nothing
committed), seeks to the beginning and reads up to the end offsets taken at the start, so a
listing changes nothing on the broker and always ends. A `DeadLetter` keeps the original bytes
for replaying; they are never part of its repr or of its summary.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from common_core.runtime.kafka_consumer import record_key
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity
from common_core.topics import DEFAULT_TOPIC_PREFIX, DLQ_SUFFIX, Topic, topic_name
from huleedu_cli.errors import BrokerUnavailableError, InputError, TopicNotFoundError
from huleedu_cli.kafka_client import CLIENT_ID, connecting

DLQ_HEADER_PREFIX = "x-dlq-"
REPLAYED_FROM_HEADER = "x-replayed-from"
# Offsets are listed this many partitions at a time, each request within the request timeout.
_OFFSETS_CHUNK = 100
_REQUEST_TIMEOUT_SECONDS = 60.0
RecordHeaders = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of a dead-letter topic: where it is, why it failed, and the original bytes."""

    dlq_topic: str
    partition: int
    offset: int
    failed_at: datetime
    reason: str
    error_message: str
    attempts: int | None
    key: str | None
    event_id: str | None
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer_group: str | None
    replayed_from: str | None
    value: bytes = field(repr=False)  # the original message: essay or answer text, never shown
    headers: RecordHeaders = field(repr=False)

    @property
    def size(self) -> int:
        """Size of the original message in bytes."""
        return len(self.value)

    @property
    def address(self) -> str:
        """`<dlq topic>:<partition>:<offset>`, the letter's place (Kafka names have no colons)."""
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    def summary(self) -> dict[str, Any]:
        """Everything about the letter except its contents, JSON-ready."""
        return {
            "failed_at": self.failed_at.isoformat(),
            "reason": self.reason,
            "attempts": self.attempts,
            "key": self.key,
            "event_id": self.event_id,
            "size_bytes": self.size,
            "dlq_topic": self.dlq_topic,
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "error_message": self.error_message,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "consumer_group": self.consumer_group,
            "replayed_from": self.replayed_from,
        }

    def replay_message(self) -> OutgoingMessage:
        """The original bytes and key for the original topic, `x-dlq-*` headers dropped and
        `x-replayed-from` naming this letter."""
        headers = [
            (name, value)
            for name, value in self.headers
            if not name.startswith(DLQ_HEADER_PREFIX) and name != REPLAYED_FROM_HEADER
        ]
        headers.append((REPLAYED_FROM_HEADER, self.address.encode()))
        return OutgoingMessage(
            topic=self.original_topic, value=self.value, key=self.key, headers=headers
        )


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """The letters to republish, and how many older letters of the same events were left out."""

    letters: list[DeadLetter]
    superseded: int


def resolve_topic(topic: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> tuple[str, str]:
    """(original topic, dead-letter topic) for a name given by an operator.

    Either name is accepted, and a registered topic may be given without the prefix
    (`cj_assessment.completed.v1` under prefix `huleedu`).
    """
    name = topic.strip().removesuffix(DLQ_SUFFIX)
    if not name:
        raise InputError(f"not a topic name: {topic!r}")
    try:
        logical = Topic(name)
    except ValueError:
        return name, f"{name}{DLQ_SUFFIX}"
    try:
        full = topic_name(logical, prefix)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    return full, f"{full}{DLQ_SUFFIX}"


def dead_letter_from_record(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    """Read a dead-letter record's headers, key and event id (the value is kept, not parsed
    beyond the envelope's `event_id`)."""
    headers: RecordHeaders = tuple(record.headers or ())
    found: dict[str, str] = {}
    for name, raw in headers:
        found.setdefault(name, raw.decode("utf-8", errors="replace"))
    value = record.value or b""
    return DeadLetter(
        dlq_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        failed_at=_failed_at(found.get("x-dlq-failed-at"), record.timestamp),
        reason=found.get("x-dlq-error-code", ""),
        error_message=found.get("x-dlq-error-message", ""),
        attempts=_int_or_none(found.get("x-dlq-attempts")),
        key=record_key(record),
        event_id=envelope_event_id(value),
        original_topic=found.get("x-dlq-original-topic") or record.topic.removesuffix(DLQ_SUFFIX),
        original_partition=_int_or_none(found.get("x-dlq-original-partition")),
        original_offset=_int_or_none(found.get("x-dlq-original-offset")),
        consumer_group=found.get("x-dlq-consumer-group"),
        replayed_from=found.get(REPLAYED_FROM_HEADER),
        value=value,
        headers=headers,
    )


def envelope_event_id(value: bytes) -> str | None:
    """The envelope's `event_id` when the bytes are a JSON object carrying a UUID there."""
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or absurdly nested
        return None
    raw = document.get("event_id") if isinstance(document, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        return None


def plan_replay(letters: Sequence[DeadLetter], event_id: UUID | None = None) -> ReplayPlan:
    """The letters of `event_id` (all letters when None), in failure order, each event once.

    An event dead-lettered again after a replay has several letters; only its latest is
    republished. Letters without a readable event id are all kept.
    """
    wanted = [letter for letter in letters if event_id is None or letter.event_id == str(event_id)]
    latest = {letter.event_id: letter for letter in wanted if letter.event_id is not None}
    chosen = [
        letter for letter in wanted if letter.event_id is None or latest[letter.event_id] is letter
    ]
    return ReplayPlan(chosen, superseded=len(wanted) - len(chosen))


async def read_dead_letters(
    bootstrap_servers: str,
    dlq_topic: str,
    *,
    connect_timeout: float = 10.0,
    stall_timeout: float = 60.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[DeadLetter]:
    """Every letter of `dlq_topic` up to its end when the call began, oldest failure first.

    Raises TopicNotFoundError for a topic the broker does not have, BrokerUnavailableError when
    the broker cannot be reached or reading makes no progress for `stall_timeout` seconds.
    """
    partitions = (await _topic_partitions(bootstrap_servers, connect_timeout, security)).get(
        dlq_topic
    )
    if partitions is None:
        raise TopicNotFoundError(
            f"topic {dlq_topic} does not exist at {bootstrap_servers} "
            "(see `huleedu dlq topics` for the dead-letter topics there)"
        )
    consumer = _reader(bootstrap_servers, connect_timeout, security)
    try:
        async with connecting(bootstrap_servers, connect_timeout, security):
            await consumer.start()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            starts = {tp: await consumer.position(tp) for tp in partitions}
            ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        try:
            records = await _read_to(
                consumer, starts, ends, stall_timeout=stall_timeout, topic=dlq_topic
            )
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailableError(
                f"reading {dlq_topic} from {bootstrap_servers} failed: {type(exc).__name__}"
            ) from exc
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()
    letters = [dead_letter_from_record(record) for record in records]
    letters.sort(key=lambda letter: (letter.failed_at, letter.partition, letter.offset))
    return letters


async def dead_letter_counts(
    bootstrap_servers: str, *, connect_timeout: float = 10.0, security: KafkaSecurity = PLAINTEXT
) -> dict[str, int]:
    """Every `*.dlq` topic on the broker with the number of letters it holds, by name."""
    topics = await _topic_partitions(bootstrap_servers, connect_timeout, security)
    partitions = [tp for name, tps in topics.items() if name.endswith(DLQ_SUFFIX) for tp in tps]
    counts = {name: 0 for name in topics if name.endswith(DLQ_SUFFIX)}
    if not partitions:
        return counts
    consumer = _reader(bootstrap_servers, connect_timeout, security)
    try:
        async with connecting(bootstrap_servers, connect_timeout, security):
            await consumer.start()
        # Only connecting is bounded by the connect timeout: a broker with many dead-letter
        # topics takes a while to list all their offsets, each request bounded on its own.
        starts: dict[TopicPartition, int] = {}
        ends: dict[TopicPartition, int] = {}
        try:
            for first in range(0, len(partitions), _OFFSETS_CHUNK):
                chunk = partitions[first : first + _OFFSETS_CHUNK]
                starts.update(await consumer.beginning_offsets(chunk))
                ends.update(await consumer.end_offsets(chunk))
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailableError(
                f"reading offsets from {bootstrap_servers} failed: {type(exc).__name__}"
            ) from exc
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()
    for tp in partitions:
        counts[tp.topic] += ends[tp] - starts[tp]
    return dict(sorted(counts.items()))


async def replay_dead_letters(
    bootstrap_servers: str,
    letters: Sequence[DeadLetter],
    *,
    connect_timeout: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Republish the letters to their original topics (acks from all replicas, idempotent).

    Every target topic must exist: nothing is sent when one does not.
    """
    if not letters:
        return
    existing = await _topic_partitions(bootstrap_servers, connect_timeout, security)
    missing = sorted({letter.original_topic for letter in letters} - set(existing))
    if missing:
        raise TopicNotFoundError(
            f"original topic {', '.join(missing)} does not exist at {bootstrap_servers}; "
            "nothing was replayed"
        )
    producer = KafkaEventProducer(
        bootstrap_servers,
        client_id=CLIENT_ID,
        security=security,
        request_timeout_ms=int(connect_timeout * 1000),
    )
    try:
        async with connecting(bootstrap_servers, connect_timeout, security):
            await producer.start()
        try:
            await producer.send_many([letter.replay_message() for letter in letters])
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailableError(
                f"replaying to {bootstrap_servers} failed ({type(exc).__name__}): some of the "
                f"{len(letters)} letters may have been republished; replaying again is safe"
            ) from exc
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await producer.stop()


def _reader(
    bootstrap_servers: str, connect_timeout: float, security: KafkaSecurity
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=CLIENT_ID,
        group_id=None,  # manual assignment: no group joined, no offsets committed
        enable_auto_commit=False,
        isolation_level="read_committed",
        # Each request once connected (an offsets listing of many partitions takes a while on a
        # busy broker); connecting itself is bounded by the connect timeout.
        request_timeout_ms=int(max(connect_timeout, _REQUEST_TIMEOUT_SECONDS) * 1000),
        **security.client_kwargs(),
    )


async def _topic_partitions(
    bootstrap_servers: str, connect_timeout: float, security: KafkaSecurity
) -> dict[str, list[TopicPartition]]:
    """Every topic on the broker with its partitions."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id=CLIENT_ID,
        request_timeout_ms=int(connect_timeout * 1000),
        **security.client_kwargs(),
    )
    try:
        async with connecting(bootstrap_servers, connect_timeout, security):
            await admin.start()
            # All topics: asking for one by name may make a broker auto-create it.
            described = await admin.describe_topics()
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await admin.close()
    found: dict[str, list[TopicPartition]] = {}
    for topic in described:
        if not topic["error_code"]:
            name = topic["topic"]
            found[name] = [TopicPartition(name, part["partition"]) for part in topic["partitions"]]
    return found


async def _read_to(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    *,
    stall_timeout: float,
    topic: str,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of the assigned partitions from `starts` up to `ends`; each partition is paused
    once done, so nothing past its end is fetched."""
    records: list[ConsumerRecord[bytes, bytes]] = []
    positions = dict(starts)
    remaining = {tp for tp in ends if positions[tp] < ends[tp]}
    consumer.pause(*(set(ends) - remaining))
    last_progress = time.monotonic()
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, fetched in batch.items():
            records.extend(record for record in fetched if record.offset < ends[tp])
        for tp in list(remaining):
            position = await consumer.position(tp)
            if position != positions[tp]:
                positions[tp] = position
                last_progress = time.monotonic()
            if position >= ends[tp]:
                remaining.discard(tp)
                consumer.pause(tp)
        if remaining and time.monotonic() - last_progress > stall_timeout:
            raise BrokerUnavailableError(
                f"reading {topic} made no progress for {stall_timeout:g}s; "
                f"{len(records)} letters read so far"
            )
    return records


def _failed_at(header: str | None, timestamp_ms: int) -> datetime:
    if header:
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(header)
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(max(timestamp_ms, 0) / 1000, UTC)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
