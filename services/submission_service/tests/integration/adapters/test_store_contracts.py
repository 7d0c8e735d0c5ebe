"""The stores' contract: every behaviour below holds for the in-memory fakes
(`submission_service.testing.fakes`) and the PostgreSQL stores alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.events.envelope import new_event
from common_core.events.llm import LLMRubricRequestV1
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from common_core.runtime.unit_of_work import SessionTransactions
from submission_service.adapters.postgres import PostgresUnitOfWork
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.application.ports import (
    AssessmentRecord,
    ResponseEdit,
    ResponseRecord,
    ScoringJob,
    StoredReply,
    Transactions,
)
from submission_service.domain.assessments import (
    JobStatus,
    PassageKind,
    QuestionScore,
    QuestionType,
    ReferencePassage,
    ScoreStatus,
)
from submission_service.domain.identity import Identity
from submission_service.entrypoints.runtime import VERSIONS_DIR
from submission_service.testing.fakes import FakeTransactions
from submission_service.testing.harness import TEST_WEBHOOK_SECRET_KEY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The migrated submission database of this module."""
    await run_migrations(database_url, [VERSIONS_DIR])
    engine = create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["fake", "postgres"])
async def transactions(request: pytest.FixtureRequest, engine: AsyncEngine) -> Transactions:
    """Units of work over empty stores: the fakes, or PostgreSQL with every table emptied."""
    if request.param == "fake":
        return FakeTransactions()
    async with engine.begin() as connection:
        tables = (
            await connection.execute(
                text(
                    "SELECT tablename FROM pg_tables"
                    " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    box = WebhookSecretBox([TEST_WEBHOOK_SECRET_KEY])
    return SessionTransactions(
        create_session_factory(engine), partial(PostgresUnitOfWork, secret_box=box)
    )


def _response(
    identity: Identity, question_id: str = "q1", module_slug: str = "m"
) -> ResponseRecord:
    return ResponseRecord(
        id=uuid4(),
        identity=identity,
        question_id=question_id,
        module_slug=module_slug,
        learning_outcome_id=None,
        content_id=None,
        answer_text="An answer.",
        answer_metadata={"draft": 1},
        created_at=datetime.now(UTC),
        completed_at=None,
    )


def _assessment(identity: Identity) -> AssessmentRecord:
    return AssessmentRecord(uuid4(), "intro-writing", identity, "open", datetime.now(UTC))


def _job(response_id: UUID, assessment_id: UUID | None, job_type: str = "gpt") -> ScoringJob:
    return ScoringJob(uuid4(), job_type, JobStatus.QUEUED, response_id, assessment_id, uuid4())


def _essay_record(response_id: UUID, status: ScoreStatus = ScoreStatus.PENDING) -> QuestionScore:
    return QuestionScore(
        "argument", "short-essay", QuestionType.ESSAY, status, 2.0, None, str(response_id)
    )


LEARNER = Identity(user_id="learner")


async def _answered(transactions: Transactions, identity: Identity = LEARNER) -> ResponseRecord:
    async with transactions() as uow:
        return await uow.responses.insert_response(_response(identity))


async def _submitted(transactions: Transactions) -> tuple[ResponseRecord, AssessmentRecord]:
    response = await _answered(transactions)
    assessment = _assessment(LEARNER)
    async with transactions() as uow:
        await uow.assessments.insert_assessment(assessment)
    return response, assessment


class TestUnitOfWork:
    async def test_a_committed_block_runs_its_after_commit_actions_once(
        self, transactions: Transactions
    ) -> None:
        ran: list[str] = []
        async with transactions() as uow:
            uow.after_commit(lambda: ran.append("counted"))
            await uow.responses.insert_response(_response(LEARNER))

        assert ran == ["counted"]

    async def test_a_raising_block_keeps_nothing_and_runs_no_after_commit_action(
        self, transactions: Transactions
    ) -> None:
        ran: list[str] = []
        record = _response(LEARNER)

        async def failing_use_case() -> None:
            async with transactions() as uow:
                uow.after_commit(lambda: ran.append("counted"))
                await uow.responses.insert_response(record)
                raise RuntimeError("the use case failed")

        with pytest.raises(RuntimeError):
            await failing_use_case()

        async with transactions() as uow:
            assert await uow.responses.response_by_id(record.id) is None
        assert ran == []


class TestInbox:
    async def test_an_event_is_claimed_once_per_consumer(self, transactions: Transactions) -> None:
        event_id = uuid4()
        async with transactions() as uow:
            first = await uow.inbox.claim("consumer", event_id)
        async with transactions() as uow:
            again = await uow.inbox.claim("consumer", event_id)
            other = await uow.inbox.claim("other-consumer", event_id)

        assert (first, again, other) == (True, False, True)


class TestResponses:
    async def test_an_answer_is_read_back_by_its_owner_only(
        self, transactions: Transactions
    ) -> None:
        stored = await _answered(transactions)

        async with transactions() as uow:
            mine = await uow.responses.response_for(LEARNER, stored.id)
            theirs = await uow.responses.response_for(Identity(user_id="other"), stored.id)
            by_id = await uow.responses.response_by_id(stored.id)

        assert mine is not None
        assert (mine.answer_text, mine.answer_metadata, mine.locked) == (
            "An answer.",
            {"draft": 1},
            False,
        )
        assert theirs is None
        assert by_id == stored

    async def test_an_update_changes_the_named_fields_only(
        self, transactions: Transactions
    ) -> None:
        stored = await _answered(transactions)
        completed_at = datetime(2026, 11, 22, 12, tzinfo=UTC)

        async with transactions() as uow:
            updated = await uow.responses.update_response(
                stored.id, ResponseEdit(answer_text="Revised.", completed_at=completed_at)
            )

        assert (updated.answer_text, updated.completed_at) == ("Revised.", completed_at)
        assert (updated.question_id, updated.answer_metadata) == ("q1", {"draft": 1})

    async def test_answers_are_listed_newest_first_with_their_scores(
        self, transactions: Transactions
    ) -> None:
        first = await _answered(transactions)
        second = await _answered(transactions)
        async with transactions() as uow:
            await uow.responses.insert_response(_response(LEARNER, module_slug="elsewhere"))
            await uow.scoring.insert_score(
                score_id=uuid4(),
                response_id=first.id,
                score_data={"overall": 4.0},
                model_id="heuristic-v1",
                prompt_version="rubric-v1",
                created_at=datetime.now(UTC),
            )

        async with transactions() as uow:
            listed = await uow.responses.list_responses(
                LEARNER, module_slug="m", question_id=None, limit=10
            )
            limited = await uow.responses.list_responses(
                LEARNER, module_slug=None, question_id="q1", limit=1
            )

        assert [(r.id, [s.score_data for s in scores]) for r, scores in listed] == [
            (second.id, []),
            (first.id, [{"overall": 4.0}]),
        ]
        assert len(limited) == 1

    async def test_claiming_moves_answers_to_the_user_except_questions_already_answered(
        self, transactions: Transactions
    ) -> None:
        token = uuid4()
        anonymous = Identity(anonymous_token=token)
        user_id = f"user-{uuid4()}"
        user = Identity(user_id=user_id)
        async with transactions() as uow:
            await uow.responses.insert_response(_response(user, "q1"))
            await uow.responses.insert_response(_response(anonymous, "q1"))
            moving = await uow.responses.insert_response(_response(anonymous, "q2"))

        async with transactions() as uow:
            counts = await uow.responses.claim_responses(token, user_id)
        async with transactions() as uow:
            moved = await uow.responses.response_for(user, moving.id)

        assert counts == (1, 1)
        assert moved is not None

    async def test_an_answer_locked_by_a_submission_says_so(
        self, transactions: Transactions
    ) -> None:
        response, assessment = await _submitted(transactions)

        async with transactions() as uow:
            await uow.assessments.lock_responses(assessment.id, [response.id])
        async with transactions() as uow:
            locked = await uow.responses.response_for(LEARNER, response.id)

        assert locked is not None
        assert locked.locked is True


class TestScoring:
    async def test_a_job_is_found_by_its_request_and_finished_with_its_result(
        self, transactions: Transactions
    ) -> None:
        response, assessment = await _submitted(transactions)
        job = _job(response.id, assessment.id)
        async with transactions() as uow:
            await uow.scoring.insert_job(job, request_event_id=None)
            before = await uow.scoring.unfinished_jobs(assessment.id)

        async with transactions() as uow:
            found = await uow.scoring.job_for_request(job.request_id or uuid4())
            await uow.scoring.finish_job(job.id, JobStatus.COMPLETED, result={"overall": 4.0})
        async with transactions() as uow:
            [finished] = await uow.scoring.jobs_for_response(assessment.id, response.id)
            after = await uow.scoring.unfinished_jobs(assessment.id)

        assert found == job
        assert (finished.status, finished.result, finished.error) == (
            JobStatus.COMPLETED,
            {"overall": 4.0},
            None,
        )
        assert (before, after) == (1, 0)

    async def test_a_queued_job_shows_in_progress_once_its_request_left_the_outbox(
        self, transactions: Transactions
    ) -> None:
        response, assessment = await _submitted(transactions)
        waiting, pruned = _job(response.id, assessment.id), _job(response.id, assessment.id, "rag")
        async with transactions() as uow:
            request = LLMRubricRequestV1(
                request_id=waiting.request_id or uuid4(),
                answer_text="An answer.",
                question_text="Why?",
                rubric={"relevance": "1-5"},
                callback_topic="t.llm_provider.rubric_result.v1",
            )
            envelope = new_event(
                "t.llm_provider.rubric_request.v1",
                request,
                source_service="submission_service",
                correlation_id=uuid4(),
            )
            uow.stage_event("t.llm_provider.rubric_request.v1", envelope, str(response.id))
            await uow.scoring.insert_job(waiting, request_event_id=envelope.event_id)
            # An outbox row already pruned: the relay delivered it long ago.
            await uow.scoring.insert_job(pruned, request_event_id=uuid4())

        async with transactions() as uow:
            views = await uow.scoring.jobs_of(assessment.id)

        assert {v.job.job_type: v.job.status for v in views} == {
            "gpt": JobStatus.QUEUED,
            "rag": JobStatus.IN_PROGRESS,
        }
        assert {(v.module_slug, v.question_id) for v in views} == {("m", "q1")}


class TestAssessments:
    async def test_an_assessment_is_read_by_its_owner_and_moves_to_completed(
        self, transactions: Transactions
    ) -> None:
        assessment = _assessment(LEARNER)
        submitted_at = datetime.now(UTC)
        completed_at = submitted_at + timedelta(seconds=5)
        async with transactions() as uow:
            await uow.assessments.insert_assessment(assessment)
        async with transactions() as uow:
            other = await uow.assessments.assessment_for(Identity(user_id="other"), assessment.id)
            await uow.assessments.mark_submitted(assessment.id, submitted_at)
        async with transactions() as uow:
            submitted = await uow.assessments.assessment_for(LEARNER, assessment.id, lock=True)
            await uow.assessments.complete_assessment(assessment.id, {"total": 3.0}, completed_at)
        async with transactions() as uow:
            completed = await uow.assessments.lock_assessment(assessment.id)

        assert other is None
        assert submitted is not None
        assert (submitted.status, submitted.submitted_at) == ("submitted", submitted_at)
        assert completed is not None
        assert (completed.status, completed.result, completed.completed_at) == (
            "completed",
            {"total": 3.0},
            completed_at,
        )

    async def test_a_reply_is_stored_under_its_idempotency_key(
        self, transactions: Transactions
    ) -> None:
        reply = StoredReply(request_hash="abc", status_code=202, body={"status": "submitted"})
        async with transactions() as uow:
            await uow.assessments.lock_idempotency_key(LEARNER.key, "key-1")
            missing = await uow.assessments.stored_reply(LEARNER.key, "key-1")
            await uow.assessments.store_reply(LEARNER.key, "key-1", "assessment.submit", reply)
        async with transactions() as uow:
            stored = await uow.assessments.stored_reply(LEARNER.key, "key-1")
            other = await uow.assessments.stored_reply(LEARNER.key, "key-2")

        assert (missing, stored, other) == (None, reply, None)

    async def test_the_newest_answer_of_each_question_is_the_one_submitted(
        self, transactions: Transactions
    ) -> None:
        await _answered(transactions)
        newest = await _answered(transactions)
        async with transactions() as uow:
            other_question = await uow.responses.insert_response(_response(LEARNER, "q2"))
            await uow.responses.insert_response(_response(LEARNER, "q3", module_slug="other"))

        async with transactions() as uow:
            latest = await uow.assessments.latest_responses(LEARNER, ["m"])

        assert {k: r.id for k, r in latest.items()} == {
            ("m", "q1"): newest.id,
            ("m", "q2"): other_question.id,
        }

    async def test_an_essay_score_record_waits_for_its_job(
        self, transactions: Transactions
    ) -> None:
        response, assessment = await _submitted(transactions)
        job = _job(response.id, assessment.id, "fusion")
        rule = QuestionScore("m", "t", QuestionType.THEORETICAL, ScoreStatus.SCORED, 1.0, 1.0)
        async with transactions() as uow:
            await uow.scoring.insert_job(job, request_event_id=None)
            await uow.assessments.insert_score_records(
                assessment.id, [rule, _essay_record(response.id)]
            )
            await uow.assessments.attach_job(assessment.id, response.id, job.id)
        async with transactions() as uow:
            await uow.assessments.update_score_record(
                assessment.id, job.id, status=ScoreStatus.SCORED, score=1.5, detail={"overall": 4}
            )
        async with transactions() as uow:
            records = await uow.assessments.score_records(assessment.id)

        by_type = {r.score_type: r for r in records}
        assert by_type[QuestionType.THEORETICAL] == rule
        essay = by_type[QuestionType.ESSAY]
        assert (essay.status, essay.score, essay.detail) == (
            ScoreStatus.SCORED,
            1.5,
            {"overall": 4},
        )


class TestWebhooks:
    async def _hooked(self, transactions: Transactions, count: int) -> tuple[UUID, list[UUID]]:
        _, assessment = await _submitted(transactions)
        hooks = [uuid4() for _ in range(count)]
        async with transactions() as uow:
            for hook in hooks:
                await uow.webhooks.insert_webhook(
                    hook, assessment.id, f"https://example.org/{hook}", f"secret-{hook}"
                )
        return assessment.id, hooks

    async def test_a_completion_is_queued_for_every_webhook_of_the_assessment(
        self, transactions: Transactions
    ) -> None:
        assessment_id, hooks = await self._hooked(transactions, 2)

        async with transactions() as uow:
            queued = await uow.webhooks.enqueue_deliveries(
                assessment_id, "assessment.completed", {"n": 1}
            )
        async with transactions() as uow:
            registered = await uow.webhooks.webhooks_of(assessment_id)

        assert queued == 2
        assert {w.id for w in registered} == set(hooks)
        for webhook in registered:
            [delivery] = webhook.deliveries
            assert (delivery.event, delivery.payload, delivery.status) == (
                "assessment.completed",
                {"n": 1},
                "pending",
            )
            assert (delivery.url, delivery.secret) == (webhook.url, f"secret-{webhook.id}")

    async def test_a_leased_delivery_is_not_leased_again_until_the_lease_ends(
        self, transactions: Transactions
    ) -> None:
        _, [hook] = await self._hooked(transactions, 1)
        async with transactions() as uow:
            await uow.webhooks.enqueue_delivery(hook, "assessment.completed", {"n": 1})

        async with transactions() as uow:
            [leased] = await uow.webhooks.lease_due(10, lease_seconds=60)
        async with transactions() as uow:
            again = await uow.webhooks.lease_due(10, lease_seconds=60)

        assert (leased.webhook_id, leased.attempt_count, leased.secret) == (
            hook,
            0,
            f"secret-{hook}",
        )
        assert again == []

    async def test_attempts_are_numbered_and_the_last_one_settles_the_delivery(
        self, transactions: Transactions
    ) -> None:
        assessment_id, [hook] = await self._hooked(transactions, 1)
        async with transactions() as uow:
            await uow.webhooks.enqueue_delivery(hook, "assessment.completed", {"n": 1})
        async with transactions() as uow:
            [leased] = await uow.webhooks.lease_due(10, lease_seconds=60)

        numbers: list[int] = []
        for succeeded, status in ((False, 500), (True, 200)):
            async with transactions() as uow:
                numbers.append(
                    await uow.webhooks.record_attempt(
                        leased.id,
                        succeeded=succeeded,
                        http_status=status,
                        error=None if succeeded else "HTTP 500",
                        give_up=False,
                        retry_at=None if succeeded else datetime.now(UTC) - timedelta(seconds=1),
                    )
                )
        async with transactions() as uow:
            [webhook] = await uow.webhooks.webhooks_of(assessment_id)
            due = await uow.webhooks.lease_due(10, lease_seconds=60)

        [delivery] = webhook.deliveries
        assert numbers == [1, 2]
        assert (delivery.status, delivery.attempt_count) == ("delivered", 2)
        assert [(a.attempt, a.succeeded, a.http_status, a.error) for a in delivery.attempts] == [
            (1, False, 500, "HTTP 500"),
            (2, True, 200, None),
        ]
        assert due == []

    async def test_giving_up_fails_the_delivery(self, transactions: Transactions) -> None:
        assessment_id, [hook] = await self._hooked(transactions, 1)
        async with transactions() as uow:
            await uow.webhooks.enqueue_delivery(hook, "assessment.completed", {"n": 1})
        async with transactions() as uow:
            [leased] = await uow.webhooks.lease_due(10, lease_seconds=60)
            await uow.webhooks.record_attempt(
                leased.id,
                succeeded=False,
                http_status=None,
                error="refused",
                give_up=True,
                retry_at=None,
            )
        async with transactions() as uow:
            [webhook] = await uow.webhooks.webhooks_of(assessment_id)

        assert [d.status for d in webhook.deliveries] == ["failed"]


def _passage(passage_id: str, text_: str, *questions: str) -> ReferencePassage:
    return ReferencePassage(
        id=passage_id, kind=PassageKind.KEY_POINT, question_ids=questions or ("q1",), text=text_
    )


class TestReference:
    async def test_the_passage_sharing_the_terms_ranks_first(
        self, transactions: Transactions
    ) -> None:
        async with transactions() as uow:
            await uow.reference.replace_passages(
                "d",
                [
                    _passage("p1", "Chlorophyll absorbs light."),
                    _passage("p2", "Mitochondria release energy."),
                    _passage("p3", "Mitochondria are elsewhere.", "q2"),
                ],
            )

        async with transactions() as uow:
            found = await uow.reference.retrieve_passages("d", "q1", ["mitochondria"], 4)

        assert [p.passage_id for p in found] == ["p2"]
        assert found[0].rank > 0

    async def test_without_a_match_the_questions_first_passages_come_unranked(
        self, transactions: Transactions
    ) -> None:
        async with transactions() as uow:
            await uow.reference.replace_passages(
                "d",
                [_passage(f"p{i}", f"Passage number {i}.") for i in range(3)],
            )

        async with transactions() as uow:
            found = await uow.reference.retrieve_passages("d", "q1", ["zebra"], 2)
            unknown = await uow.reference.retrieve_passages("d", "q9", ["passage"], 2)

        assert [(p.passage_id, p.rank) for p in found] == [("p0", 0.0), ("p1", 0.0)]
        assert unknown == []

    async def test_replacing_keeps_exactly_the_given_passages(
        self, transactions: Transactions
    ) -> None:
        async with transactions() as uow:
            await uow.reference.replace_passages(
                "d", [_passage("old", "Old text."), _passage("kept", "Kept text.")]
            )
        async with transactions() as uow:
            await uow.reference.replace_passages("d", [_passage("kept", "Kept, revised.")])

        async with transactions() as uow:
            found = await uow.reference.retrieve_passages("d", "q1", [], 10)

        assert [(p.passage_id, p.text) for p in found] == [("kept", "Kept, revised.")]
