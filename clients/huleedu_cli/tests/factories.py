"""Builders of CJ outcome payloads and of dead letters for the client's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from aiokafka import ConsumerRecord
from pydantic import BaseModel

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJCompletionReason,
    CJStatistics,
    EssayRanking,
    ResourceUsage,
    SystemMetadata,
)
from common_core.events.envelope import EventEnvelope
from common_core.runtime.kafka_consumer import dead_letter_message
from common_core.runtime.kafka_producer import OutgoingMessage, envelope_message

MARKER_ESSAY_TEXT = "MARKER-ESSAY-7f3a: Phones in class distract every pupil who owns one."


class EssayText(BaseModel):
    """A stand-in payload that carries essay text, as the real request events do."""

    essay_id: str
    text_content: str


def essay_envelope(text: str = MARKER_ESSAY_TEXT) -> EventEnvelope[EssayText]:
    """An envelope whose payload holds an essay's text."""
    return EventEnvelope[EssayText](
        event_type="test.essay.v1",
        source_service="huleedu_cli_tests",
        correlation_id=uuid4(),
        data=EssayText(essay_id="e1", text_content=text),
    )


def record_of(
    message: OutgoingMessage, *, partition: int = 0, offset: int = 0
) -> ConsumerRecord[bytes, bytes]:
    """The record a consumer would read for `message` at `partition`/`offset`."""
    key = message.key.encode() if message.key is not None else None
    return ConsumerRecord(
        topic=message.topic,
        partition=partition,
        offset=offset,
        timestamp=int(datetime.now(UTC).timestamp() * 1000),
        timestamp_type=0,
        key=key,
        value=message.value,
        checksum=None,
        serialized_key_size=len(key) if key is not None else -1,
        serialized_value_size=len(message.value),
        headers=list(message.headers),
    )


def dead_letter_of(
    original: ConsumerRecord[bytes, bytes],
    *,
    code: str,
    reason: str,
    attempts: int | None = None,
    group_id: str = "test-group",
) -> OutgoingMessage:
    """The consumer runner's dead letter for `original`; `attempts=None` leaves out the
    `x-dlq-attempts` header, as on letters written before the runner counted attempts."""
    letter = dead_letter_message(original, code=code, reason=reason, group_id=group_id)
    headers = [(name, value) for name, value in letter.headers if name != "x-dlq-attempts"]
    if attempts is not None:
        headers.insert(1, ("x-dlq-attempts", str(attempts).encode()))
    return OutgoingMessage(letter.topic, letter.value, letter.key, headers)


def essay_message(topic: str, key: str | None, text: str = MARKER_ESSAY_TEXT) -> OutgoingMessage:
    """An envelope with essay text, as a producer would publish it to `topic`."""
    return envelope_message(topic, essay_envelope(text), key)


def completed_event(
    entity_ref: str = "batch-1", essay_ids: list[str] | None = None
) -> CJAssessmentCompletedV1:
    """A completed event ranking `essay_ids` in the given order (first is best)."""
    ids = essay_ids or ["e1", "e2", "e3", "e4"]
    count = len(ids)
    rankings = [
        EssayRanking(
            essay_id=essay_id,
            rank=position + 1,
            score=round((count - 1) / 2 - position, 3),
            standard_error=0.4 + 0.05 * position,
            comparisons=count - 1,
            wins=count - 1 - position,
        )
        for position, essay_id in enumerate(ids)
    ]
    return CJAssessmentCompletedV1(
        entity_ref=entity_ref,
        cj_assessment_job_id="job-1",
        completion_reason=CJCompletionReason.ALL_PAIRS_COMPARED,
        rankings=rankings,
        statistics=CJStatistics(
            scale_separation_reliability=0.91,
            split_half_reliability=0.87,
            position_bias_logit=0.05,
            position_bias_standard_error=0.12,
            comparisons_per_essay=float(count - 1),
        ),
        system_metadata=SystemMetadata(
            processed_at=datetime.now(UTC),
            processing_duration_seconds=1.5,
            resource_usage=ResourceUsage(
                total_comparisons=count * (count - 1) // 2,
                completed_comparisons=count * (count - 1) // 2,
            ),
        ),
    )


def failed_event(entity_ref: str = "batch-1") -> CJAssessmentFailedV1:
    """A failed event with a validation error."""
    return CJAssessmentFailedV1(
        entity_ref=entity_ref,
        cj_assessment_job_id="job-1",
        error_detail=ErrorDetail(
            code=ErrorCode.VALIDATION,
            message="duplicate essay_id e1",
            correlation_id=uuid4(),
            service="cj_assessment_service",
            operation="validate_batch",
        ),
        system_metadata=SystemMetadata(
            processed_at=datetime.now(UTC), processing_duration_seconds=0.1
        ),
    )
