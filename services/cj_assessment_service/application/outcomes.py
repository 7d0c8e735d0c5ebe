"""How a batch ends: scored with exactly one completed event, or failed (or cancelled) with
exactly one failed event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.messages import BatchMessages
from cj_assessment_service.application.ports import (
    BatchRecord,
    PairOutcomes,
    UnitOfWork,
)
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.domain.batch import (
    BatchState,
    reliability_stop_applies,
    success_rate,
    transition,
)
from cj_assessment_service.domain.judge_fit import HumanCounts
from cj_assessment_service.domain.scoring import BatchScores, ScoredEssay, score_batch
from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJCompletionReason,
    JudgeIdentity,
    ResourceUsage,
    SystemMetadata,
)
from common_core.runtime.compute import ComputePool
from common_core.topics import Topic

log = structlog.get_logger(__name__)


def score_answers(
    essays: list[ScoredEssay],
    pairs: PairOutcomes,
    target_reliability: float | None,
    adaptive_pairing: bool,
    human_counts: HumanCounts | None = None,
) -> BatchScores:
    """Rankings, statistics and grade projections of a batch's answers (run on the compute
    pool); with human judges, their statistics too."""
    return score_batch(
        essays,
        pairs.answered(len(essays)),
        target_reliability=target_reliability,
        adaptive_pairing=adaptive_pairing,
        judges=pairs.answered_judges() if human_counts is not None else None,
        human_counts=human_counts,
    )


def _human_counts(batch: BatchRecord) -> HumanCounts | None:
    if batch.human_judging is None:
        return None
    return HumanCounts(
        invited=len(batch.human_judging.judges),
        assigned=batch.human_planned,
        judged=batch.human_answered,
        released=batch.human_released,
    )


def completion_detail(batch: BatchRecord) -> str | None:
    """What the completion reason does not say: human judges' comparisons released unjudged."""
    if batch.human_released == 0:
        return None
    return (
        f"{batch.human_released} of {batch.human_planned} comparisons given to human judges "
        "were not judged by the deadline and were released (dropped: the AI's budget is "
        "unchanged)"
    )


class BatchOutcomes:
    """Finishing and failing batches, in the caller's transaction."""

    def __init__(self, settings: Settings, messages: BatchMessages, compute: ComputePool) -> None:
        self._settings = settings
        self._messages = messages
        self._compute = compute

    async def finish(
        self,
        uow: UnitOfWork,
        batch: BatchRecord,
        reason: CJCompletionReason,
        *,
        partial: bool = False,
        pairs: PairOutcomes | None = None,
    ) -> None:
        """Score the batch and stage exactly one completed event, in this transaction.

        `pairs` are the batch's pairs when the caller has just read them under the batch lock.
        """
        scoring_state = batch.state
        if batch.state not in (BatchState.SCORING, BatchState.INITIALIZING):
            scoring_state = transition(batch.state, BatchState.SCORING)
        essays = await uow.essays.scored(batch.id)
        human_counts = _human_counts(batch)
        if pairs is None or (human_counts is not None and pairs.judge is None):
            pairs = await uow.pairs.outcomes(batch.id, with_judges=human_counts is not None)
        # Below all pairs the pairs after the coverage ring are chosen from earlier answers.
        adaptive = reliability_stop_applies(len(essays), batch.budget)
        target = batch.request_settings.target_reliability if adaptive else None
        scored = await self._compute.run(
            "scoring", batch.id, score_answers, essays, pairs, target, adaptive, human_counts
        )
        now = datetime.now(UTC)
        payload = CJAssessmentCompletedV1(
            entity_ref=batch.entity_ref,
            cj_assessment_job_id=str(batch.id),
            completion_reason=reason,
            rankings=scored.rankings,
            statistics=scored.statistics,
            grade_projections=scored.grade_projections,
            system_metadata=self._system_metadata(batch, now),
            partial_scoring_triggered=batch.partial_scoring_triggered or partial,
            completion_detail=completion_detail(batch),
        )
        self._messages.stage(
            uow, Topic.CJ_ASSESSMENT_COMPLETED, payload, batch=batch, key=batch.entity_ref
        )
        await uow.essays.save_scores(batch.id, scored.rankings)
        transition(scoring_state, BatchState.COMPLETED)  # raises unless it may complete
        await uow.batches.mark_completed(
            batch.id,
            reason=reason,
            partial_scoring_triggered=batch.partial_scoring_triggered or partial,
            result=payload.model_dump(
                mode="json",
                include={"rankings", "statistics", "grade_projections", "completion_detail"},
            ),
            at=now,
        )
        progress = batch.answered / batch.budget if batch.budget else 1.0

        def record() -> None:
            metrics.BATCHES_FINISHED.labels(state="COMPLETED", reason=reason.value).inc()
            metrics.BATCH_PROGRESS.observe(progress)
            metrics.WAVES_PER_BATCH.observe(batch.waves)

        uow.after_commit(record)
        log.info(
            "cj_batch_completed",
            batch_id=str(batch.id),
            reason=reason.value,
            comparisons=batch.completed,
        )

    def _system_metadata(self, batch: BatchRecord, now: datetime) -> SystemMetadata:
        return SystemMetadata(
            source_service=SERVICE_NAME,
            processed_at=now,
            processing_duration_seconds=max(0.0, (now - batch.created_at).total_seconds()),
            resource_usage=ResourceUsage(
                total_comparisons=batch.planned,
                completed_comparisons=batch.completed,
                failed_comparisons=batch.failed,
                prompt_tokens=batch.prompt_tokens,
                completion_tokens=batch.completion_tokens,
                cached_prompt_tokens=batch.cached_prompt_tokens,
                cache_write_tokens=batch.cache_write_tokens,
                # Unknown as a whole when any answer's price was: never a partial sum.
                estimated_cost_usd=(
                    None if batch.unpriced_answers else round(batch.estimated_cost_usd, 8)
                ),
                unpriced_comparisons=batch.unpriced_answers,
            ),
            judges=[JudgeIdentity.model_validate(judge) for judge in batch.judges],
        )

    async def fail_low_success(self, uow: UnitOfWork, batch: BatchRecord) -> None:
        """Fail a batch whose share of successful comparisons is below the threshold."""
        rate = success_rate(batch.completed, batch.failed)
        await self.fail(
            uow,
            batch,
            ErrorCode.LOW_SUCCESS_RATE,
            f"only {rate:.0%} of comparisons succeeded; "
            f"{self._settings.min_success_rate_threshold:.0%} required",
            operation="score",
            details={"completed": batch.completed, "failed": batch.failed},
        )

    async def fail(
        self,
        uow: UnitOfWork,
        batch: BatchRecord,
        code: ErrorCode,
        message: str,
        *,
        operation: str,
        state: BatchState = BatchState.FAILED,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Stage exactly one failed event and move the batch to FAILED (or CANCELLED)."""
        now = datetime.now(UTC)
        detail = ErrorDetail(
            code=code,
            message=message,
            correlation_id=batch.correlation_id,
            service=SERVICE_NAME,
            operation=operation,
            retryable=False,
            details=details or {},
        )
        payload = CJAssessmentFailedV1(
            entity_ref=batch.entity_ref,
            cj_assessment_job_id=str(batch.id),
            error_detail=detail,
            system_metadata=self._system_metadata(batch, now),
        )
        self._messages.stage(
            uow, Topic.CJ_ASSESSMENT_FAILED, payload, batch=batch, key=batch.entity_ref
        )
        await uow.batches.mark_failed(
            batch.id,
            state=transition(batch.state, state),
            error_detail=detail.model_dump(mode="json"),
            at=now,
        )
        uow.after_commit(
            lambda: metrics.BATCHES_FINISHED.labels(state=state.value, reason=code.value).inc()
        )
        log.info("cj_batch_failed", batch_id=str(batch.id), code=code.value, state=state.value)
