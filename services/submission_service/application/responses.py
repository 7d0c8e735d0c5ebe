"""Answers: create, update (with the completion trigger), list with scores, claim."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from common_core.events.assessment import AssessmentResponseCompletedV1
from common_core.topics import Topic
from submission_service.application.ports import (
    KEEP,
    QuestionCatalog,
    ResponseEdit,
    ResponseRecord,
    ResponseStore,
    ScoreRecord,
    UnitOfWork,
)
from submission_service.application.scoring import (
    JOB_TYPE_RESPONSE,
    RubricPolicy,
    stage_event,
    stage_rubric_request,
)
from submission_service.domain.completion import completion_requested
from submission_service.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
)
from submission_service.domain.identity import Identity
from submission_service.metrics import COMPLETIONS_TRIGGERED, RESPONSES_WRITTEN


@dataclass(frozen=True, slots=True)
class NewResponse:
    """The fields a client sends to create an answer."""

    question_id: str
    module_slug: str
    answer_text: str = ""
    learning_outcome_id: str | None = None
    content_id: str | None = None
    answer_metadata: dict[str, Any] = field(default_factory=dict)
    completed_at: datetime | None = None


async def create_response(uow: UnitOfWork, identity: Identity, new: NewResponse) -> ResponseRecord:
    """Store an answer. Never triggers scoring, even with `completed_at` (docs/contracts.md)."""
    record = ResponseRecord(
        id=uuid4(),
        identity=identity,
        question_id=new.question_id,
        module_slug=new.module_slug,
        learning_outcome_id=new.learning_outcome_id,
        content_id=new.content_id,
        answer_text=new.answer_text,
        answer_metadata=dict(new.answer_metadata),
        created_at=datetime.now(UTC),
        completed_at=new.completed_at,
    )
    stored = await uow.responses.insert_response(record)
    uow.after_commit(RESPONSES_WRITTEN.labels(operation="created").inc)
    return stored


async def update_response(
    uow: UnitOfWork,
    identity: Identity,
    response_id: UUID,
    edit: ResponseEdit,
    *,
    catalog: QuestionCatalog,
    policy: RubricPolicy,
    correlation_id: UUID,
) -> tuple[ResponseRecord, bool]:
    """Apply an update; stage scoring events when the body sets `completed_at` to a timestamp.

    Returns the updated answer and whether scoring was requested. Scoring runs later: the events
    are only staged in the outbox within this transaction.
    """
    current = await uow.responses.response_for(identity, response_id)
    if current is None:
        raise NotFoundError("no such response for this identity", reason="response_not_found")
    if current.locked:
        raise ConflictError(
            "the response belongs to a submitted assessment and can no longer be edited",
            reason="response_locked",
        )
    updated = await uow.responses.update_response(response_id, edit) if edit.changes() else current
    completed_at = None if edit.completed_at is KEEP else edit.completed_at
    triggered = completion_requested(
        completed_at_sent=edit.completed_at is not KEEP, completed_at=completed_at
    )
    if triggered and completed_at is not None:
        found = catalog.find_question(updated.module_slug, updated.question_id)
        job = await stage_rubric_request(
            uow,
            policy=policy,
            response=updated,
            question=found[1] if found else None,
            job_type=JOB_TYPE_RESPONSE,
            correlation_id=correlation_id,
        )
        stage_event(
            uow,
            policy,
            Topic.ASSESSMENT_RESPONSE_COMPLETED,
            AssessmentResponseCompletedV1(
                response_id=updated.id,
                question_id=updated.question_id,
                module_slug=updated.module_slug,
                learning_outcome_id=updated.learning_outcome_id,
                content_id=updated.content_id,
                user_id=updated.identity.user_id,
                anonymous_token=updated.identity.anonymous_token,
                completed_at=completed_at,
                answer_length=len(updated.answer_text),
                scoring_request_id=job.request_id,
            ),
            key=str(updated.id),
            correlation_id=correlation_id,
        )
    uow.after_commit(RESPONSES_WRITTEN.labels(operation="updated").inc)
    if triggered:
        uow.after_commit(COMPLETIONS_TRIGGERED.inc)
    return updated, triggered


async def list_responses(
    responses: ResponseStore,
    identity: Identity,
    *,
    module_slug: str | None,
    question_id: str | None,
    limit: int,
) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
    """The caller's own answers, newest first, with their scores."""
    return await responses.list_responses(
        identity, module_slug=module_slug, question_id=question_id, limit=limit
    )


async def claim_responses(
    responses: ResponseStore, identity: Identity, anonymous_token: UUID
) -> tuple[int, int]:
    """Move an anonymous token's answers to the logged-in user; returns (claimed, skipped)."""
    if identity.user_id is None:
        raise ForbiddenError(
            "claiming needs a logged-in user (Bearer token)", reason="user_required"
        )
    return await responses.claim_responses(anonymous_token, identity.user_id)
