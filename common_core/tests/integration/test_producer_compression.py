"""A CJ completed event of 10,000 rankings (1.3 MB of JSON) against the broker's default 1 MB
message limit: refused uncompressed, accepted and read back gzip-compressed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.errors import MessageSizeTooLargeError

from common_core.events import (
    CJAssessmentCompletedV1,
    CJCompletionReason,
    CJStatistics,
    EssayRanking,
    EventEnvelope,
    SystemMetadata,
    decode_event,
)
from common_core.events.envelope import encode_envelope
from common_core.limits import MAX_ESSAYS_PER_REQUEST
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import read_topic

pytestmark = pytest.mark.integration

BROKER_DEFAULT_MESSAGE_BYTES = 1_048_588  # message.max.bytes, which the test broker keeps


def largest_completed_event() -> EventEnvelope[CJAssessmentCompletedV1]:
    n = MAX_ESSAYS_PER_REQUEST
    return EventEnvelope[CJAssessmentCompletedV1](
        event_type="huleedu.cj_assessment.completed.v1",
        source_service="cj_assessment_service",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentCompletedV1(
            entity_ref="bos-batch-large",
            cj_assessment_job_id=str(uuid.uuid4()),
            completion_reason=CJCompletionReason.BUDGET_EXHAUSTED,
            rankings=[
                EssayRanking(
                    essay_id=f"essay-{i:05d}",
                    rank=i + 1,
                    score=3.0 - 6.0 * i / n + 0.000123456789,
                    standard_error=0.412345678901,
                    comparisons=10 + i % 7,
                    wins=i % 11,
                )
                for i in range(n)
            ],
            statistics=CJStatistics(comparisons_per_essay=10.0),
            system_metadata=SystemMetadata(
                processed_at=datetime.now(UTC), processing_duration_seconds=120.0
            ),
        ),
    )


async def test_the_largest_completed_event_needs_and_gets_compression(
    kafka_bootstrap_servers: str, unique_topic: str
) -> None:
    envelope = largest_completed_event()
    await ensure_topics(kafka_bootstrap_servers, [unique_topic], partitions=1)
    assert len(encode_envelope(envelope)) > BROKER_DEFAULT_MESSAGE_BYTES

    async with KafkaEventProducer(kafka_bootstrap_servers, client_id="plain") as plain:
        with pytest.raises(MessageSizeTooLargeError):
            await plain.publish(unique_topic, envelope, key="bos-batch-large")
    async with KafkaEventProducer(
        kafka_bootstrap_servers, client_id="gzip", compression_type="gzip"
    ) as compressed:
        await compressed.publish(unique_topic, envelope, key="bos-batch-large")

    records = await read_topic(kafka_bootstrap_servers, unique_topic, expected=1)
    assert len(records) == 1
    assert records[0].value is not None
    read = decode_event(records[0].value, CJAssessmentCompletedV1)
    assert read.event_id == envelope.event_id
    assert len(read.data.rankings) == MAX_ESSAYS_PER_REQUEST
