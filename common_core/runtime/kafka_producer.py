"""An idempotent, acks=all Kafka producer that publishes envelopes keyed by entity."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from common_core.events.envelope import EventEnvelope, encode_envelope
from common_core.runtime.failures import is_transient
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity
from common_core.runtime.tracing import trace_headers

log = structlog.get_logger(__name__)

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message ready for the wire."""

    topic: str
    value: bytes
    key: str | None = None
    headers: Headers = field(default_factory=list)


def envelope_message(topic: str, envelope: EventEnvelope[Any], key: str | None) -> OutgoingMessage:
    """Wrap an envelope as an outgoing message with the standard headers (and the current
    trace context, when tracing is on)."""
    headers: Headers = [
        ("event_type", envelope.event_type.encode()),
        ("event_id", str(envelope.event_id).encode()),
        ("correlation_id", str(envelope.correlation_id).encode()),
    ]
    headers.extend((name, value.encode()) for name, value in trace_headers().items())
    return OutgoingMessage(topic=topic, value=encode_envelope(envelope), key=key, headers=headers)


class KafkaEventProducer:
    """Thin, typed wrapper over AIOKafkaProducer: idempotent, `acks=all`, entity-keyed.

    `publish` returns once the broker has acknowledged the message, so callers may commit their
    own progress (offsets, outbox rows) after it. `compression_type="gzip"` compresses each
    record batch; the broker's message size limit then applies to the compressed batch, while
    `max_request_size` bounds the uncompressed record.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str,
        security: KafkaSecurity = PLAINTEXT,
        linger_ms: int = 5,
        request_timeout_ms: int = 30_000,
        max_request_size: int = 4 * 1024 * 1024,
        compression_type: Literal["gzip"] | None = None,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=request_timeout_ms,
            max_request_size=max_request_size,
            compression_type=compression_type,
            **security.client_kwargs(),
        )
        self._started = False

    async def start(self) -> None:
        """Connect to the cluster."""
        if not self._started:
            await self._producer.start()
            self._started = True

    async def stop(self) -> None:
        """Flush and disconnect."""
        if self._started:
            await self._producer.stop()
            self._started = False

    async def check_cluster(self) -> None:
        """Readiness: the cluster answers a metadata request (raises `KafkaError` otherwise)."""
        if not self._started:
            raise RuntimeError("the Kafka producer has not started")
        await self._producer.client.fetch_all_metadata()

    async def __aenter__(self) -> KafkaEventProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def publish(self, topic: str, envelope: EventEnvelope[Any], *, key: str | None) -> None:
        """Publish one envelope and wait for the broker's acknowledgement."""
        await self.send(envelope_message(topic, envelope, key))

    async def send(self, message: OutgoingMessage) -> None:
        """Send one prepared message and wait for its acknowledgement."""
        await self.send_many([message])

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send messages pipelined, then wait until every one is acknowledged (or raise)."""
        if not messages:
            return
        futures = [
            await self._producer.send(
                m.topic,
                value=m.value,
                key=m.key.encode("utf-8") if m.key is not None else None,
                headers=m.headers,
            )
            for m in messages
        ]
        await asyncio.gather(*futures)


async def send_acknowledged(
    producer: KafkaEventProducer,
    messages: Sequence[OutgoingMessage],
    *,
    attempts: int = 1,
    backoff_max_seconds: float = 5.0,
) -> None:
    """Send and wait for the broker's acks, trying up to `attempts` times while the broker is
    unreachable (the last error is raised); an error the broker means (a missing topic, a record
    too large) is raised at once."""
    for attempt in range(1, attempts + 1):
        try:
            await producer.send_many(messages)
        except KafkaError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning("publish_retry", attempt=attempt, error=type(exc).__name__)
            delay = min(backoff_max_seconds, 0.2 * 2 ** (attempt - 1))
            await asyncio.sleep(delay * random.uniform(0.5, 1))
        else:
            return
