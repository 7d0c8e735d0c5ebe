"""Answer use cases with an in-memory store: the trigger, locking, isolation, claiming."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest

from common_core.events.assessment import AssessmentResponseCompletedV1
from common_core.events.llm import LLMRubricRequestV1
from common_core.topics import Topic, topic_name
from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.application.ports import ResponseEdit, ResponseRecord
from submission_service.application.responses import (
    NewResponse,
    claim_responses,
    create_response,
    update_response,
)
from submission_service.application.scoring import RubricPolicy
from submission_service.config import DEFAULT_CONTENT_DIR
from submission_service.domain.errors import ConflictError, ForbiddenError, NotFoundError
from submission_service.domain.identity import Identity
from submission_service.testing.fakes import FakeUnitOfWork

CATALOG = FileDefinitionCatalog.load(DEFAULT_CONTENT_DIR)
POLICY = RubricPolicy(callback_topic="p.llm_provider.rubric_result.v1", topic_prefix="p")
LEARNER = Identity(anonymous_token=uuid4())
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


async def _created(store: FakeUnitOfWork, completed_at: datetime | None = None) -> ResponseRecord:
    new = NewResponse(
        question_id="short-essay",
        module_slug="argument",
        answer_text="An essay.",
        completed_at=completed_at,
    )
    return await create_response(store, LEARNER, new)


async def _update(store: FakeUnitOfWork, response_id: UUID, changes: ResponseEdit) -> bool:
    _, triggered = await update_response(
        store,
        LEARNER,
        response_id,
        changes,
        catalog=CATALOG,
        policy=POLICY,
        correlation_id=uuid4(),
    )
    return triggered


class TestCompletionTrigger:
    async def test_setting_completed_at_stages_both_events_with_the_shipped_rubric(self) -> None:
        store = FakeUnitOfWork()
        created = await _created(store)

        triggered = await _update(store, created.id, ResponseEdit(completed_at=NOW))

        assert triggered
        topics = [t for t, _, _ in store.staged]
        assert topics == [
            topic_name(Topic.LLM_RUBRIC_REQUESTED, "p"),
            topic_name(Topic.ASSESSMENT_RESPONSE_COMPLETED, "p"),
        ]
        request, completed = store.staged[0][1].data, store.staged[1][1].data
        assert isinstance(request, LLMRubricRequestV1)
        assert isinstance(completed, AssessmentResponseCompletedV1)
        assert request.callback_topic == POLICY.callback_topic
        assert set(request.rubric) == {"relevance", "depth", "clarity", "technical"}
        assert "textbooks" in request.question_text
        assert completed.scoring_request_id == request.request_id
        [job] = store.tables.jobs.values()
        assert job.request_id == request.request_id

    @pytest.mark.parametrize(
        "changes",
        [
            ResponseEdit(answer_text="draft"),
            ResponseEdit(completed_at=None),
        ],
    )
    async def test_drafts_and_cleared_completion_stage_nothing(self, changes: ResponseEdit) -> None:
        store = FakeUnitOfWork()
        created = await _created(store)

        assert not await _update(store, created.id, changes)
        assert store.staged == []

    async def test_creating_with_completed_at_stages_nothing(self) -> None:
        store = FakeUnitOfWork()

        await _created(store, completed_at=NOW)

        assert store.staged == []
        assert store.tables.jobs == {}


class TestGuards:
    async def test_locked_answers_cannot_be_edited(self) -> None:
        store = FakeUnitOfWork()
        created = await _created(store)
        store.tables.response_locks.add(created.id)

        with pytest.raises(ConflictError) as caught:
            await _update(store, created.id, ResponseEdit(answer_text="x"))
        assert caught.value.reason == "response_locked"

    async def test_another_identity_gets_not_found(self) -> None:
        store = FakeUnitOfWork()
        created = await _created(store)

        with pytest.raises(NotFoundError):
            await update_response(
                store,
                Identity(user_id="intruder"),
                created.id,
                ResponseEdit(answer_text="x"),
                catalog=CATALOG,
                policy=POLICY,
                correlation_id=uuid4(),
            )


class TestClaim:
    async def test_claim_skips_questions_the_user_answered(self) -> None:
        store = FakeUnitOfWork()
        user = Identity(user_id="u")
        await create_response(store, user, NewResponse(question_id="q1", module_slug="m"))
        for question in ("q1", "q2"):
            await create_response(
                store, LEARNER, NewResponse(question_id=question, module_slug="m")
            )

        token = LEARNER.anonymous_token
        assert token is not None
        assert await claim_responses(store.responses, user, token) == (1, 1)

    async def test_claim_needs_a_user(self) -> None:
        with pytest.raises(ForbiddenError):
            await claim_responses(FakeUnitOfWork().responses, LEARNER, uuid4())
