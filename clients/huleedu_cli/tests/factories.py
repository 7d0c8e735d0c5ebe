"""Builders of CJ outcome payloads for the client's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

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
