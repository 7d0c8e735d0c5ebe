"""A stand-in for the CJ service on the real broker: answers each request with an outcome event.

It ranks essays by length (longest first), which is enough to test the client's Kafka side
before, and independently of, the real CJ service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    CJCompletionReason,
    CJStatistics,
    EssayRanking,
    EventEnvelope,
    SystemMetadata,
    decode_event,
)
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.topics import Topic, topic_name

FAIL_MARKER = "fail-"


def _completed(request: CJAssessmentRequestV1) -> CJAssessmentCompletedV1:
    ordered = sorted(request.essays_to_process, key=lambda e: -len(e.text_content))
    count = len(ordered)
    return CJAssessmentCompletedV1(
        entity_ref=request.entity_ref,
        cj_assessment_job_id=uuid.uuid4().hex,
        completion_reason=CJCompletionReason.ALL_PAIRS_COMPARED,
        rankings=[
            EssayRanking(
                essay_id=essay.essay_id,
                rank=i + 1,
                score=(count - 1) / 2 - i,
                standard_error=0.5,
                comparisons=count - 1,
                wins=count - 1 - i,
            )
            for i, essay in enumerate(ordered)
        ],
        statistics=CJStatistics(scale_separation_reliability=0.9, comparisons_per_essay=count - 1),
        system_metadata=SystemMetadata(
            processed_at=datetime.now(UTC), processing_duration_seconds=0
        ),
    )


def _failed(request: CJAssessmentRequestV1, correlation_id: uuid.UUID) -> CJAssessmentFailedV1:
    return CJAssessmentFailedV1(
        entity_ref=request.entity_ref,
        error_detail=ErrorDetail(
            code=ErrorCode.VALIDATION,
            message="fake CJ service refused the batch",
            correlation_id=correlation_id,
            service="fake_cj_service",
            operation="validate_batch",
        ),
        system_metadata=SystemMetadata(
            processed_at=datetime.now(UTC), processing_duration_seconds=0
        ),
    )


async def answer_requests(
    bootstrap_servers: str, prefix: str, should_stop: Callable[[], bool]
) -> int:
    """Answer requests on `<prefix>`'s request topic until `should_stop()`; returns how many.

    Entity refs starting with `fail-` get a failed event, all others a completed one.
    """
    consumer = AIOKafkaConsumer(
        topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix),
        bootstrap_servers=bootstrap_servers,
        group_id=f"fake-cj-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        metadata_max_age_ms=500,  # notices the topic soon after the client creates it
    )
    answered = 0
    async with KafkaEventProducer(bootstrap_servers, client_id="fake-cj") as producer:
        await consumer.start()
        try:
            while not should_stop():
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        assert record.value is not None
                        incoming = decode_event(record.value, CJAssessmentRequestV1)
                        request = incoming.data
                        if request.entity_ref.startswith(FAIL_MARKER):
                            failed_topic = topic_name(Topic.CJ_ASSESSMENT_FAILED, prefix)
                            await producer.publish(
                                failed_topic,
                                EventEnvelope[CJAssessmentFailedV1](
                                    event_type=failed_topic,
                                    source_service="fake_cj_service",
                                    correlation_id=incoming.correlation_id,
                                    data=_failed(request, incoming.correlation_id),
                                ),
                                key=request.entity_ref,
                            )
                        else:
                            completed_topic = topic_name(Topic.CJ_ASSESSMENT_COMPLETED, prefix)
                            await producer.publish(
                                completed_topic,
                                EventEnvelope[CJAssessmentCompletedV1](
                                    event_type=completed_topic,
                                    source_service="fake_cj_service",
                                    correlation_id=incoming.correlation_id,
                                    data=_completed(request),
                                ),
                                key=request.entity_ref,
                            )
                        answered += 1
        finally:
            await consumer.stop()
    return answered
