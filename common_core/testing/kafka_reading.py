"""Reading every message of a topic from the beginning, for assertions in tests."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    expected: int,
    timeout: float = 30.0,
    settle: float = 0.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read `topic` from the start until `expected` messages arrived (then `settle` seconds more,
    to catch unexpected extras) or `timeout` passed; returns what was read."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        **security.client_kwargs(),
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(records) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records
