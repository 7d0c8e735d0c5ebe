"""Requesting rubric scores and recording their results (responses and assessment essays)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from pydantic import BaseModel

from common_core.events.assessment import AssessmentScoredV1, EssayFusionV1, EssayStagePartV1
from common_core.events.envelope import EventEnvelope, new_event
from common_core.events.llm import (
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    LLMRubricResultV1,
    ReferencePassage,
    RubricScores,
)
from common_core.topics import Topic, topic_name
from submission_service.application.ports import (
    AssessmentRecord,
    Outbox,
    ResponseRecord,
    RetrievedPassage,
    ScoringJob,
    UnitOfWork,
)
from submission_service.config import SERVICE_NAME
from submission_service.domain.assessments import (
    JobStatus,
    Question,
    QuestionScore,
    QuestionType,
    ScoreStatus,
    essay_points,
    fuse,
)
from submission_service.domain.essay_fusion import (
    FUSION_VERSION,
    EssayFusion,
    JobType,
    StageOutcome,
    essay_rule_score,
    fuse_essay,
)
from submission_service.metrics import ESSAY_FUSIONS, RUBRIC_RESULTS

log = structlog.get_logger(__name__)

JOB_TYPE_RESPONSE = JobType.RESPONSE_RUBRIC.value

DEFAULT_RUBRIC: dict[str, Any] = {
    "relevance": "1: off topic; 3: partly answers the question; 5: answers it directly throughout",
    "depth": "1: a bare claim; 3: some reasoning; 5: well developed reasoning with evidence",
    "clarity": "1: hard to follow; 3: understandable; 5: clear and well organised",
    "technical": "1: frequent language errors; 3: some errors; 5: accurate language",
}


@dataclass(frozen=True, slots=True)
class RubricPolicy:
    """How rubric requests are addressed: the topics (callback topic, prefix of the events
    staged) and the optional model choice."""

    callback_topic: str
    topic_prefix: str
    provider: LLMProviderName | None = None
    model: str | None = None
    temperature: float | None = None
    language: str = "en"
    rag_passages: int = 4  # reference passages retrieved for a rag request


def stage_event(
    outbox: Outbox,
    policy: RubricPolicy,
    topic: Topic,
    payload: BaseModel,
    *,
    key: str,
    correlation_id: UUID,
) -> UUID:
    """Stage one of this service's events in the transaction's outbox; returns its event_id."""
    name = topic_name(topic, policy.topic_prefix)
    envelope = new_event(name, payload, source_service=SERVICE_NAME, correlation_id=correlation_id)
    outbox.stage_event(name, envelope, key)
    return envelope.event_id


async def stage_rubric_request(
    uow: UnitOfWork,
    *,
    policy: RubricPolicy,
    response: ResponseRecord,
    question: Question | None,
    job_type: str,
    correlation_id: UUID,
    assessment_id: UUID | None = None,
    passages: Sequence[RetrievedPassage] = (),
) -> ScoringJob:
    """Queue a scoring job and stage its `LLMRubricRequestV1` (grounded in `passages` when
    given) in the same transaction."""
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
        metadata["job_type"] = job_type
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
        reference_passages=[
            ReferencePassage(passage_id=p.passage_id, text=p.text) for p in passages
        ],
    )
    event_id = stage_event(
        uow,
        policy,
        Topic.LLM_RUBRIC_REQUESTED,
        request,
        key=str(response.id),
        correlation_id=correlation_id,
    )
    await uow.scoring.insert_job(job, request_event_id=event_id)
    return job


@dataclass(frozen=True, slots=True)
class ResultOutcome:
    """What handling one rubric result did (for logs, metrics and tests)."""

    outcome: str  # scored, failed, duplicate, unknown_request, already_finished
    job_id: UUID | None = None


async def record_rubric_result(
    uow: UnitOfWork,
    envelope: EventEnvelope[LLMRubricResultV1],
    *,
    consumer: str,
    policy: RubricPolicy,
) -> ResultOutcome:
    """Store a rubric result (or error) and announce the score; idempotent per event and request."""
    if not await uow.inbox.claim(consumer, envelope.event_id):
        return _counted(uow, ResultOutcome("duplicate"))
    result = envelope.data
    job = await uow.scoring.job_for_request(result.request_id)
    if job is None:
        log.warning("rubric_result_for_unknown_request", request_id=str(result.request_id))
        return _counted(uow, ResultOutcome("unknown_request"))
    if job.status.is_terminal:
        return _counted(uow, ResultOutcome("already_finished", job.id))
    if result.error_detail is not None:
        error = result.error_detail.model_dump(mode="json")
        await uow.scoring.finish_job(job.id, JobStatus.FAILED, error)
        if job.assessment_id is not None:
            await fuse_essay_if_ready(uow, policy, job, envelope.correlation_id)
        code = result.error_detail.code
        uow.after_commit(
            lambda: log.warning(
                "rubric_scoring_failed",
                job_id=str(job.id),
                code=code,
                correlation_id=str(envelope.correlation_id),
            )
        )
        return _counted(uow, ResultOutcome("failed", job.id))
    await _store_score(uow, policy, job, result, envelope.correlation_id)
    return _counted(uow, ResultOutcome("scored", job.id))


async def _store_score(
    uow: UnitOfWork,
    policy: RubricPolicy,
    job: ScoringJob,
    result: LLMRubricResultV1,
    correlation_id: UUID,
) -> None:
    if result.scores is None or result.overall is None:  # guaranteed by the contract's validator
        raise ValueError("rubric result without scores")
    response = await uow.responses.response_by_id(job.response_id)
    if response is None:  # deleted meanwhile (cascade removed the job too); nothing to record
        return
    scored_at = datetime.now(UTC)
    score_id = uuid4()
    prompt_version = result.prompt_version or (result.prompt_sha256 or "unversioned")[:16]
    feedback = result.feedback or ""
    score_data: dict[str, Any] = {
        "scores": result.scores.model_dump(mode="json"),
        "overall": result.overall,
        "feedback": feedback,
        "provider": result.provider,
        "latency_ms": result.latency_ms,
        "usage": result.usage.model_dump(mode="json"),
        "prompt_sha256": result.prompt_sha256,
        "request_id": str(result.request_id),
    }
    if job.job_type in _ESSAY_STAGES:
        score_data["stage"] = job.job_type
        score_data["citations"] = list(result.citations)
    await uow.scoring.insert_score(
        score_id=score_id,
        response_id=job.response_id,
        score_data=score_data,
        model_id=result.model,
        prompt_version=prompt_version,
        created_at=scored_at,
    )
    if job.assessment_id is not None and job.job_type in _ESSAY_STAGES:
        stage_result = {
            "score_id": str(score_id),
            "overall": result.overall,
            "scores": result.scores.model_dump(mode="json"),
            "citations": list(result.citations),
            "feedback": feedback,
            "provider": result.provider,
            "model_id": result.model,
        }
        await uow.scoring.finish_job(job.id, JobStatus.COMPLETED, result=stage_result)
        await fuse_essay_if_ready(uow, policy, job, correlation_id)
        return
    await uow.scoring.finish_job(job.id, JobStatus.COMPLETED)
    stage_event(
        uow,
        policy,
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
        records = await uow.assessments.score_records(job.assessment_id)
        weight = next((r.max_score for r in records if r.response_id == str(job.response_id)), 1.0)
        await uow.assessments.update_score_record(
            job.assessment_id,
            job.id,
            status=ScoreStatus.SCORED,
            score=essay_points(result.overall, weight),
            detail={"overall": result.overall, "score_id": str(score_id)},
        )
        await finalize_if_done(uow, job.assessment_id)


async def finalize_if_done(uow: UnitOfWork, assessment_id: UUID) -> bool:
    """Fuse the scores and complete the assessment once no job is outstanding."""
    assessment = await uow.assessments.lock_assessment(assessment_id)
    if assessment is None or assessment.status == "completed":
        return False
    if await uow.scoring.unfinished_jobs(assessment_id):
        return False
    records = await uow.assessments.score_records(assessment_id)
    fused = fuse(records)
    completed_at = datetime.now(UTC)
    result: dict[str, Any] = {
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
        "essays": [_essay_json(r) for r in records if r.score_type is QuestionType.ESSAY],
    }
    await uow.assessments.complete_assessment(assessment_id, result, completed_at)
    await uow.webhooks.enqueue_deliveries(
        assessment_id,
        "assessment.completed",
        completion_payload(assessment, result, completed_at),
    )
    return True


def _essay_json(record: QuestionScore) -> dict[str, Any]:
    """An essay's part of the assessment result: its points and, once fused, the fusion."""
    return {
        "module_slug": record.module_slug,
        "question_id": record.question_id,
        "response_id": record.response_id,
        "status": record.status.value,
        "score": record.score,
        "max_score": record.max_score,
        "rule_score": record.detail.get("rule_score"),
        "fusion": record.detail.get("fusion"),
    }


_ESSAY_STAGES = frozenset({JobType.GPT.value, JobType.RAG.value})


def _outcome(job: ScoringJob | None) -> StageOutcome:
    if job is None:  # an essay job of the single-stage design (before sub0003) has no rag job
        return StageOutcome(JobStatus.SKIPPED)
    result = job.result or {}
    overall = result.get("overall")
    return StageOutcome(
        job.status,
        float(overall) if overall is not None else None,
        tuple(result.get("citations", ())),
    )


def _fused_dimensions(fusion: EssayFusion, jobs: dict[str, ScoringJob]) -> RubricScores:
    """Each rubric dimension as the weighted mean of the LLM stages that scored it."""
    weighted: dict[str, float] = {}
    total = 0.0
    for part in fusion.parts:
        job = jobs.get(part.stage)
        if part.stage not in _ESSAY_STAGES or part.score is None or job is None:
            continue
        total += part.weight
        for name, value in (job.result or {}).get("scores", {}).items():
            weighted[name] = weighted.get(name, 0.0) + part.weight * float(value)
    fallback = max(1, min(5, round(fusion.overall or 1.0)))
    levels = {k: max(1, min(5, round(v / total))) for k, v in weighted.items()} if total else {}
    return RubricScores.model_validate(
        {d: levels.get(d, fallback) for d in ("relevance", "depth", "clarity", "technical")}
    )


async def fuse_essay_if_ready(
    uow: UnitOfWork, policy: RubricPolicy, job: ScoringJob, correlation_id: UUID
) -> None:
    """Once an essay's gpt and rag stages are finished: fuse the rule, gpt and rag scores, finish
    the fusion job, update the essay's score record, announce the fused score, and finalise the
    assessment when nothing else is outstanding."""
    if job.assessment_id is None:
        return
    assessment_id = job.assessment_id
    # The assessment's row lock serialises this step: of two results of one essay handled
    # concurrently, the one that gets the lock second sees the first committed.
    await uow.assessments.lock_assessment(assessment_id)
    jobs = {
        j.job_type: j for j in await uow.scoring.jobs_for_response(assessment_id, job.response_id)
    }
    fusion_job = jobs.get(JobType.FUSION.value)
    if fusion_job is None:  # queued before sub0003: its one gpt job is the essay's whole score
        await _record_single_stage(uow, jobs.get(job.job_type, job))
        await finalize_if_done(uow, assessment_id)
        return
    if fusion_job.status.is_terminal:
        return
    if any(not j.status.is_terminal for t, j in jobs.items() if t in _ESSAY_STAGES):
        return
    records = await uow.assessments.score_records(assessment_id)
    record = next((r for r in records if r.response_id == str(job.response_id)), None)
    if record is None:
        return
    response = await uow.responses.response_by_id(job.response_id)
    rule = (
        record.detail.get("rule_score")
        or essay_rule_score(response.answer_text if response is not None else "").as_json()
    )
    fusion = fuse_essay(
        float(rule["score"]),
        _outcome(jobs.get(JobType.GPT.value)),
        _outcome(jobs.get(JobType.RAG.value)),
    )
    detail = {"rule_score": rule, "fusion": fusion.as_json()}
    if fusion.failed:
        error = {"code": "no_stage_score", "message": "neither the gpt nor the rag stage scored"}
        await uow.scoring.finish_job(fusion_job.id, JobStatus.FAILED, error, fusion.as_json())
        await uow.assessments.update_score_record(
            assessment_id, fusion_job.id, status=ScoreStatus.FAILED, score=0.0, detail=detail
        )
        _count_fusion(uow, "failed")
    else:
        overall = fusion.overall if fusion.overall is not None else 1.0
        await uow.scoring.finish_job(fusion_job.id, JobStatus.COMPLETED, result=fusion.as_json())
        await uow.assessments.update_score_record(
            assessment_id,
            fusion_job.id,
            status=ScoreStatus.SCORED,
            score=essay_points(overall, record.max_score),
            detail={"overall": overall, **detail},
        )
        if response is not None:
            await _announce_fused_score(
                uow, policy, response, jobs=jobs, fusion=fusion, correlation_id=correlation_id
            )
        outcome = "disagreement" if fusion.disagreement else "agreed"
        _count_fusion(uow, "degraded" if fusion.degraded else outcome)
    await finalize_if_done(uow, assessment_id)


async def _record_single_stage(uow: UnitOfWork, job: ScoringJob) -> None:
    if job.assessment_id is None:
        return
    result = job.result or {}
    if job.status is JobStatus.COMPLETED and result.get("overall") is not None:
        records = await uow.assessments.score_records(job.assessment_id)
        weight = next((r.max_score for r in records if r.response_id == str(job.response_id)), 1.0)
        overall = float(result["overall"])
        await uow.assessments.update_score_record(
            job.assessment_id,
            job.id,
            status=ScoreStatus.SCORED,
            score=essay_points(overall, weight),
            detail={"overall": overall, "score_id": result.get("score_id")},
        )
    else:
        await uow.assessments.update_score_record(
            job.assessment_id, job.id, status=ScoreStatus.FAILED, score=0.0, detail={}
        )


async def _announce_fused_score(
    uow: UnitOfWork,
    policy: RubricPolicy,
    response: ResponseRecord,
    *,
    jobs: dict[str, ScoringJob],
    fusion: EssayFusion,
    correlation_id: UUID,
) -> None:
    """Store the fused score of an essay answer and stage its `AssessmentScoredV1`."""
    scored_at = datetime.now(UTC)
    score_id = uuid4()
    overall = fusion.overall if fusion.overall is not None else 1.0
    scores = _fused_dimensions(fusion, jobs)
    source = next(
        (jobs[s].result or {} for s in ("gpt", "rag") if s in jobs and jobs[s].result), {}
    )
    feedback = str(source.get("feedback", ""))
    provider = str(source.get("provider", "unknown"))
    model_id = str(source.get("model_id", "unknown"))
    await uow.scoring.insert_score(
        score_id=score_id,
        response_id=response.id,
        score_data={
            "stage": JobType.FUSION.value,
            "scores": scores.model_dump(mode="json"),
            "overall": overall,
            "feedback": feedback,
            "provider": provider,
            "fusion": fusion.as_json(),
        },
        model_id=model_id,
        prompt_version=FUSION_VERSION,
        created_at=scored_at,
    )
    stage_event(
        uow,
        policy,
        Topic.ASSESSMENT_SCORED,
        AssessmentScoredV1(
            response_id=response.id,
            score_id=score_id,
            question_id=response.question_id,
            module_slug=response.module_slug,
            scores=scores,
            overall=overall,
            feedback=feedback,
            provider=provider,
            model_id=model_id,
            prompt_version=FUSION_VERSION,
            scored_at=scored_at,
            stage=JobType.FUSION.value,
            fusion=EssayFusionV1(
                overall=overall,
                parts=[
                    EssayStagePartV1(
                        stage=p.stage, status=p.status.value, score=p.score, weight=p.weight
                    )
                    for p in fusion.parts
                ],
                disagreement=fusion.disagreement,
                degraded=fusion.degraded,
                citations=list(fusion.citations),
            ),
        ),
        key=str(response.id),
        correlation_id=correlation_id,
    )


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


def _counted(uow: UnitOfWork, outcome: ResultOutcome) -> ResultOutcome:
    uow.after_commit(RUBRIC_RESULTS.labels(outcome=outcome.outcome).inc)
    return outcome


def _count_fusion(uow: UnitOfWork, outcome: str) -> None:
    uow.after_commit(ESSAY_FUSIONS.labels(outcome=outcome).inc)
