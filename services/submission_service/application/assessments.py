"""Whole assessments: start an attempt, submit it (idempotently), report its status."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from submission_service.application.ports import (
    AssessmentRecord,
    DefinitionCatalog,
    ResponseRecord,
    ScoringJob,
    StoredReply,
    UnitOfWork,
)
from submission_service.application.scoring import (
    RubricPolicy,
    finalize_if_done,
    stage_rubric_request,
)
from submission_service.domain.assessments import (
    AssessmentDefinition,
    JobStatus,
    Question,
    QuestionScore,
    QuestionType,
    ScoreStatus,
    StageProgress,
    SubmittedAnswer,
    overall_progress,
    score_question,
    stage_progress,
)
from submission_service.domain.errors import ConflictError, NotFoundError
from submission_service.domain.essay_fusion import NO_MATERIAL_NOTE, JobType, essay_rule_score
from submission_service.domain.identity import Identity
from submission_service.domain.retrieval import search_terms
from submission_service.metrics import ASSESSMENT_SUBMISSIONS, RAG_RETRIEVALS

SUBMIT_OPERATION = "assessment.submit"


async def start_assessment(
    uow: UnitOfWork, catalog: DefinitionCatalog, identity: Identity, definition_id: str
) -> AssessmentRecord:
    """Create an attempt at a shipped definition for the caller."""
    if catalog.get(definition_id) is None:
        raise NotFoundError(
            "no assessment definition with this id",
            reason="definition_not_found",
            field="definition_id",
        )
    record = AssessmentRecord(
        id=uuid4(),
        definition_id=definition_id,
        identity=identity,
        status="open",
        created_at=datetime.now(UTC),
    )
    await uow.assessments.insert_assessment(record)
    return record


def request_fingerprint(body: dict[str, Any]) -> str:
    """A stable hash of a request body (key order does not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit_assessment(
    uow: UnitOfWork,
    catalog: DefinitionCatalog,
    identity: Identity,
    assessment_id: UUID,
    *,
    idempotency_key: str,
    request_body: dict[str, Any],
    policy: RubricPolicy,
    correlation_id: UUID,
) -> tuple[int, dict[str, Any]]:
    """Submit once per key: lock answers, score rule questions now, queue essay jobs.

    Returns (HTTP status, body). The same key and body replays the stored reply; the same key
    with another body, or a second submission under a new key, is a ConflictError.
    """
    fingerprint = request_fingerprint({"assessment_id": str(assessment_id), **request_body})
    await uow.assessments.lock_idempotency_key(identity.key, idempotency_key)
    stored = await uow.assessments.stored_reply(identity.key, idempotency_key)
    if stored is not None:
        if stored.request_hash != fingerprint:
            ASSESSMENT_SUBMISSIONS.labels(outcome="conflict").inc()
            raise ConflictError(
                "this Idempotency-Key was already used with a different request",
                reason="idempotency_key_reused",
                field="Idempotency-Key",
            )
        uow.after_commit(ASSESSMENT_SUBMISSIONS.labels(outcome="replayed").inc)
        return stored.status_code, stored.body
    assessment = await uow.assessments.assessment_for(identity, assessment_id, lock=True)
    if assessment is None:
        raise NotFoundError("no such assessment for this identity", reason="assessment_not_found")
    if assessment.status != "open":
        ASSESSMENT_SUBMISSIONS.labels(outcome="conflict").inc()
        raise ConflictError("the assessment was already submitted", reason="already_submitted")
    definition = catalog.get(assessment.definition_id)
    if definition is None:
        raise NotFoundError("the assessment's definition is gone", reason="definition_not_found")

    answers = await uow.assessments.latest_responses(identity, [m.slug for m in definition.modules])
    scores: list[QuestionScore] = []
    for module, question in definition.questions():
        response = answers.get((module.slug, question.id))
        answer = (
            SubmittedAnswer(str(response.id), response.answer_text, response.answer_metadata)
            if response is not None
            else None
        )
        item = score_question(module, question, answer)
        if item.status is ScoreStatus.PENDING and answer is not None:
            # The essay's rule_score stage runs now, inline; fusion uses it later.
            rule = essay_rule_score(answer.answer_text, question.prompt)
            item = dataclasses.replace(item, detail={"rule_score": rule.as_json()})
        scores.append(item)
    submitted_at = datetime.now(UTC)
    await uow.assessments.lock_responses(assessment.id, [r.id for r in answers.values()])
    await uow.assessments.insert_score_records(assessment.id, scores)
    await uow.assessments.mark_submitted(assessment.id, submitted_at)

    essay_jobs: list[dict[str, Any]] = []
    questions = {(m.slug, q.id): q for m, q in definition.questions()}
    for item in scores:
        if item.status is not ScoreStatus.PENDING:
            continue
        response = answers[(item.module_slug, item.question_id)]
        jobs = await _stage_essay_jobs(
            uow,
            definition,
            questions[(item.module_slug, item.question_id)],
            response,
            policy=policy,
            correlation_id=correlation_id,
            assessment_id=assessment.id,
        )
        essay_jobs += [
            {
                "job_id": str(job.id),
                "job_type": job.job_type,
                "module_slug": item.module_slug,
                "question_id": item.question_id,
                "status": job.status.value,
            }
            for job in jobs
        ]
    completed = await finalize_if_done(uow, assessment.id)
    body = {
        "assessment_id": str(assessment.id),
        "definition_id": assessment.definition_id,
        "status": "completed" if completed else "submitted",
        "submitted_at": submitted_at.isoformat(),
        "degraded": any(s.status is ScoreStatus.MISSING for s in scores),
        "rule_results": [_score_json(s) for s in scores if s.score_type is not QuestionType.ESSAY],
        "essay_jobs": essay_jobs,
        "missing": [
            {"module_slug": s.module_slug, "question_id": s.question_id}
            for s in scores
            if s.status is ScoreStatus.MISSING
        ],
    }
    await uow.assessments.store_reply(
        identity.key,
        idempotency_key,
        SUBMIT_OPERATION,
        StoredReply(request_hash=fingerprint, status_code=202, body=body),
    )
    uow.after_commit(ASSESSMENT_SUBMISSIONS.labels(outcome="submitted").inc)
    return 202, body


async def _stage_essay_jobs(
    uow: UnitOfWork,
    definition: AssessmentDefinition,
    question: Question,
    response: ResponseRecord,
    *,
    policy: RubricPolicy,
    correlation_id: UUID,
    assessment_id: UUID,
) -> list[ScoringJob]:
    """An essay answer's three asynchronous stages: the gpt rubric request, the rag request
    grounded in the passages retrieved for the question and the answer (skipped, and saying
    so, when the question has no reference material), and the fusion job that waits for both."""
    common: dict[str, Any] = {
        "policy": policy,
        "response": response,
        "question": question,
        "correlation_id": correlation_id,
        "assessment_id": assessment_id,
    }
    gpt = await stage_rubric_request(uow, job_type=JobType.GPT.value, **common)
    passages = await uow.reference.retrieve_passages(
        definition.id,
        question.id,
        search_terms(question.prompt, response.answer_text),
        policy.rag_passages,
    )
    if passages:
        matched = any(p.rank > 0 for p in passages)
        uow.after_commit(RAG_RETRIEVALS.labels(outcome="matched" if matched else "fallback").inc)
        rag = await stage_rubric_request(
            uow, job_type=JobType.RAG.value, passages=passages, **common
        )
    else:
        uow.after_commit(RAG_RETRIEVALS.labels(outcome="no_material").inc)
        rag = ScoringJob(
            id=uuid4(),
            job_type=JobType.RAG.value,
            status=JobStatus.SKIPPED,
            response_id=response.id,
            assessment_id=assessment_id,
            request_id=None,
            result={"note": NO_MATERIAL_NOTE},
        )
        await uow.scoring.insert_job(rag, request_event_id=None)
    fusion = ScoringJob(
        id=uuid4(),
        job_type=JobType.FUSION.value,
        status=JobStatus.QUEUED,
        response_id=response.id,
        assessment_id=assessment_id,
        request_id=None,
    )
    await uow.scoring.insert_job(fusion, request_event_id=None)
    # The essay's score record waits for the fusion job.
    await uow.assessments.attach_job(assessment_id, response.id, fusion.id)
    return [gpt, rag, fusion]


def _score_json(item: QuestionScore) -> dict[str, Any]:
    return {
        "module_slug": item.module_slug,
        "question_id": item.question_id,
        "score_type": item.score_type.value,
        "status": item.status.value,
        "score": item.score,
        "max_score": item.max_score,
        "detail": item.detail,
    }


async def assessment_status(
    uow: UnitOfWork, identity: Identity, assessment_id: UUID
) -> dict[str, Any]:
    """Per-stage progress with weights, job states, result and webhook deliveries."""
    assessment = await uow.assessments.assessment_for(identity, assessment_id)
    if assessment is None:
        raise NotFoundError("no such assessment for this identity", reason="assessment_not_found")
    jobs = await uow.scoring.jobs_of(assessment_id)
    records = await uow.assessments.score_records(assessment_id)
    stages: list[StageProgress] = []
    if assessment.status != "open":
        # Every answered question has a rule score (an essay's too); missing ones count as done.
        stages = stage_progress(
            rule_items=len(records), jobs=[(j.job.job_type, j.job.status) for j in jobs]
        )
    webhooks = await uow.webhooks.webhooks_of(assessment_id)
    return {
        "assessment_id": str(assessment.id),
        "definition_id": assessment.definition_id,
        "status": assessment.status,
        "created_at": assessment.created_at.isoformat(),
        "submitted_at": assessment.submitted_at.isoformat() if assessment.submitted_at else None,
        "completed_at": assessment.completed_at.isoformat() if assessment.completed_at else None,
        "progress": overall_progress(stages) if stages else 0.0,
        "stages": [
            {
                "name": s.name,
                "weight": s.weight,
                "status": s.status.value,
                "done": s.done,
                "total": s.total,
                "skipped": s.skipped,
            }
            for s in stages
        ],
        "jobs": [
            {
                "job_id": str(j.job.id),
                "job_type": j.job.job_type,
                "module_slug": j.module_slug,
                "question_id": j.question_id,
                "status": j.job.status.value,
                "error": j.job.error,
                "note": (j.job.result or {}).get("note"),
                "result": _job_result(j.job),
            }
            for j in jobs
        ],
        "result": assessment.result,
        "webhooks": [
            {
                "webhook_id": str(w.id),
                "url": w.url,
                "deliveries": [
                    {
                        "delivery_id": str(d.id),
                        "event": d.event,
                        "status": d.status,
                        "attempts": [
                            {
                                "attempt": a.attempt,
                                "attempted_at": a.attempted_at.isoformat(),
                                "succeeded": a.succeeded,
                                "http_status": a.http_status,
                                "error": a.error,
                            }
                            for a in d.attempts
                        ],
                    }
                    for d in w.deliveries
                ],
            }
            for w in webhooks
        ],
    }


def _job_result(job: ScoringJob) -> dict[str, Any] | None:
    """What a finished stage produced, as the status shows it (scores, citations, fusion)."""
    result = job.result or {}
    if job.job_type == JobType.FUSION.value:
        return result or None
    if "overall" not in result:
        return None
    return {"overall": result["overall"], "citations": result.get("citations", [])}
