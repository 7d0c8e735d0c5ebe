"""Requesting rubric scores and recording their results (responses and assessment essays)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import structlog

from common_core.events.assessment import AssessmentScoredV1
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMConfig, LLMProviderName, LLMRubricRequestV1, LLMRubricResultV1
from common_core.topics import Topic
from submission_service.application.ports import (
    AssessmentRecord,
    ResponseRecord,
    ScoringJob,
    ScoringStore,
)
from submission_service.domain.assessments import (
    JobStatus,
    Question,
    QuestionType,
    ScoreStatus,
    essay_points,
    fuse,
)
from submission_service.metrics import RUBRIC_RESULTS

log = structlog.get_logger(__name__)

JOB_TYPE_RESPONSE = "response_rubric"
JOB_TYPE_ASSESSMENT_ESSAY = "assessment_essay_rubric"

DEFAULT_RUBRIC: dict[str, Any] = {
    "relevance": "1: off topic; 3: partly answers the question; 5: answers it directly throughout",
    "depth": "1: a bare claim; 3: some reasoning; 5: well developed reasoning with evidence",
    "clarity": "1: hard to follow; 3: understandable; 5: clear and well organised",
    "technical": "1: frequent language errors; 3: some errors; 5: accurate language",
}


@dataclass(frozen=True, slots=True)
class RubricPolicy:
    """How rubric requests are addressed: callback topic and optional model choice."""

    callback_topic: str
    provider: LLMProviderName | None = None
    model: str | None = None
    temperature: float | None = None
    language: str = "en"


async def stage_rubric_request(
    store: ScoringStore,
    *,
    policy: RubricPolicy,
    response: ResponseRecord,
    question: Question | None,
    job_type: str,
    correlation_id: UUID,
    assessment_id: UUID | None = None,
) -> ScoringJob:
    """Queue a scoring job and stage its `LLMRubricRequestV1` in the same transaction."""
    job = ScoringJob(
        id=uuid4(),
        job_type=job_type,
        status=JobStatus.QUEUED,
        response_id=response.id,
        assessment_id=assessment_id,
        request_id=uuid4(),
    )
    metadata: dict[str, Any] = {
        "job_id": str(job.id),
        "response_id": str(response.id),
        "question_id": response.question_id,
        "module_slug": response.module_slug,
    }
    if assessment_id is not None:
        metadata["assessment_id"] = str(assessment_id)
    request = LLMRubricRequestV1(
        request_id=job.request_id,
        answer_text=response.answer_text,
        question_text=question.prompt if question is not None else "",
        rubric=dict(question.rubric)
        if question is not None and question.rubric
        else DEFAULT_RUBRIC,
        language=policy.language,
        llm_config=LLMConfig(
            provider=policy.provider, model=policy.model, temperature=policy.temperature
        ),
        callback_topic=policy.callback_topic,
        request_metadata=metadata,
    )
    event_id = await store.stage_event(
        Topic.LLM_RUBRIC_REQUESTED, request, key=str(response.id), correlation_id=correlation_id
    )
    await store.insert_job(job, request_event_id=event_id)
    return job


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What handling one rubric result did (for logs, metrics and tests)."""

    outcome: str  # scored, failed, duplicate, unknown_request, already_finished
    job_id: UUID | None = None


async def record_rubric_result(
    store: ScoringStore,
    envelope: EventEnvelope[LLMRubricResultV1],
    *,
    consumer: str,
) -> ResultOutcome:
    """Store a rubric result (or error) and announce the score; idempotent per event and request."""
    if not await store.claim_event(consumer, envelope.event_id):
        return _counted(ResultOutcome("duplicate"))
    result = envelope.data
    job = await store.job_for_request(result.request_id)
    if job is None:
        log.warning("rubric_result_for_unknown_request", request_id=str(result.request_id))
        return _counted(ResultOutcome("unknown_request"))
    if job.status.is_terminal:
        return _counted(ResultOutcome("already_finished", job.id))
    if result.error_detail is not None:
        error = result.error_detail.model_dump(mode="json")
        await store.finish_job(job.id, JobStatus.FAILED, error)
        if job.assessment_id is not None:
            await store.update_score_record(
                job.assessment_id,
                job.id,
                status=ScoreStatus.FAILED,
                score=0.0,
                detail={"error": error},
            )
            await finalize_if_done(store, job.assessment_id)
        log.warning("rubric_scoring_failed", job_id=str(job.id), code=result.error_detail.code)
        return _counted(ResultOutcome("failed", job.id))
    await _store_score(store, job, result, envelope.correlation_id)
    return _counted(ResultOutcome("scored", job.id))


async def _store_score(
    store: ScoringStore, job: ScoringJob, result: LLMRubricResultV1, correlation_id: UUID
) -> None:
    if result.scores is None or result.overall is None:  # guaranteed by the contract's validator
        raise ValueError("rubric result without scores")
    response = await store.response_by_id(job.response_id)
    if response is None:  # deleted meanwhile (cascade removed the job too); nothing to record
        return
    scored_at = datetime.now(UTC)
    score_id = uuid4()
    prompt_version = result.prompt_version or (result.prompt_sha256 or "unversioned")[:16]
    feedback = result.feedback or ""
    await store.insert_score(
        score_id=score_id,
        response_id=job.response_id,
        score_data={
            "scores": result.scores.model_dump(mode="json"),
            "overall": result.overall,
            "feedback": feedback,
            "provider": result.provider,
            "latency_ms": result.latency_ms,
            "usage": result.usage.model_dump(mode="json"),
            "prompt_sha256": result.prompt_sha256,
            "request_id": str(result.request_id),
        },
        model_id=result.model,
        prompt_version=prompt_version,
        created_at=scored_at,
    )
    await store.finish_job(job.id, JobStatus.COMPLETED)
    await store.stage_event(
        Topic.ASSESSMENT_SCORED,
        AssessmentScoredV1(
            response_id=job.response_id,
            score_id=score_id,
            question_id=response.question_id,
            module_slug=response.module_slug,
            scores=result.scores,
            overall=result.overall,
            feedback=feedback,
            provider=result.provider,
            model_id=result.model,
            prompt_version=prompt_version,
            scored_at=scored_at,
        ),
        key=str(job.response_id),
        correlation_id=correlation_id,
    )
    if job.assessment_id is not None:
        records = await store.score_records(job.assessment_id)
        weight = next((r.max_score for r in records if r.response_id == str(job.response_id)), 1.0)
        await store.update_score_record(
            job.assessment_id,
            job.id,
            status=ScoreStatus.SCORED,
            score=essay_points(result.overall, weight),
            detail={"overall": result.overall, "score_id": str(score_id)},
        )
        await finalize_if_done(store, job.assessment_id)


async def finalize_if_done(store: ScoringStore, assessment_id: UUID) -> bool:
    """Fuse the scores and complete the assessment once no job is outstanding."""
    assessment = await store.lock_assessment(assessment_id)
    if assessment is None or assessment.status == "completed":
        return False
    if await store.unfinished_jobs(assessment_id):
        return False
    records = await store.score_records(assessment_id)
    fused = fuse(records)
    completed_at = datetime.now(UTC)
    result = {
        "total": fused.total,
        "max_total": fused.max_total,
        "percent": fused.percent,
        "degraded": fused.degraded,
        "by_type": fused.by_type,
        "essays_failed": sum(
            1
            for r in records
            if r.score_type is QuestionType.ESSAY and r.status is ScoreStatus.FAILED
        ),
    }
    await store.complete_assessment(assessment_id, result, completed_at)
    await store.enqueue_deliveries(
        assessment_id,
        "assessment.completed",
        completion_payload(assessment, result, completed_at),
    )
    return True


def completion_payload(
    assessment: AssessmentRecord, result: dict[str, Any], completed_at: datetime
) -> dict[str, Any]:
    """The JSON body POSTed to webhooks when an assessment completes."""
    return {
        "event": "assessment.completed",
        "assessment_id": str(assessment.id),
        "definition_id": assessment.definition_id,
        "status": "completed",
        "completed_at": completed_at.isoformat(),
        "result": result,
    }


def _counted(outcome: ResultOutcome) -> ResultOutcome:
    RUBRIC_RESULTS.labels(outcome=outcome.outcome).inc()
    return outcome


async def record_rubric_results(
    store: ScoringStore, envelopes: Sequence[EventEnvelope[LLMRubricResultV1]], *, consumer: str
) -> list[ResultOutcome]:
    """Record a batch of results in the caller's transaction."""
    return [await record_rubric_result(store, e, consumer=consumer) for e in envelopes]
