"""Recording rubric results through an in-memory store (the handler's outcomes, not its calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from prometheus_client import REGISTRY

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMRubricResultV1
from common_core.topics import Topic, topic_name
from submission_service.application.ports import AssessmentRecord, ResponseRecord, ScoringJob
from submission_service.application.scoring import (
    JOB_TYPE_RESPONSE,
    ResultOutcome,
    RubricPolicy,
    record_rubric_result,
)
from submission_service.domain.assessments import (
    JobStatus,
    QuestionScore,
    QuestionType,
    ScoreStatus,
)
from submission_service.domain.identity import Identity
from submission_service.testing.fakes import FakeTransactions, StoredScoreRecord, StoredWebhook
from submission_service.testing.harness import rubric_result

POLICY = RubricPolicy(callback_topic="t.llm_provider.rubric_result.v1", topic_prefix="t")


def _store_with_job(
    job_type: str = JOB_TYPE_RESPONSE, assessment_id: UUID | None = None
) -> tuple[FakeTransactions, ScoringJob]:
    store = FakeTransactions()
    response = ResponseRecord(
        id=uuid4(),
        identity=Identity(anonymous_token=uuid4()),
        question_id="short-essay",
        module_slug="argument",
        learning_outcome_id=None,
        content_id=None,
        answer_text="An essay.",
        answer_metadata={},
        created_at=datetime.now(UTC),
        completed_at=datetime.now(UTC),
    )
    store.tables.responses[response.id] = response
    job = ScoringJob(uuid4(), job_type, JobStatus.QUEUED, response.id, assessment_id, uuid4())
    store.tables.jobs[job.id] = job
    return store, job


async def _record(
    transactions: FakeTransactions, envelope: EventEnvelope[LLMRubricResultV1]
) -> ResultOutcome:
    """Record one result in its own committed transaction, as the consumer does."""
    async with transactions() as uow:
        return await record_rubric_result(uow, envelope, consumer="c", policy=POLICY)


def _request_id(job: ScoringJob) -> UUID:
    if job.request_id is None:
        raise ValueError("this job sends no request")
    return job.request_id


def _envelope(result: LLMRubricResultV1) -> EventEnvelope[LLMRubricResultV1]:
    return EventEnvelope[LLMRubricResultV1](
        event_type="t.llm_provider.rubric_result.v1",
        source_service="llm_provider_service",
        correlation_id=uuid4(),
        data=result,
    )


class TestRecordRubricResult:
    async def test_a_result_is_stored_and_announced(self) -> None:
        store, job = _store_with_job()

        outcome = await _record(store, _envelope(rubric_result(_request_id(job), {})))

        assert outcome.outcome == "scored"
        [score] = store.tables.scores
        assert (score.model_id, score.prompt_version) == ("heuristic-v1", "rubric-v1")
        [(topic, envelope, key)] = store.tables.outbox
        assert topic == topic_name(Topic.ASSESSMENT_SCORED, "t")
        assert getattr(envelope.data, "overall", None) == 4.0
        assert key == str(job.response_id)
        assert store.tables.jobs[job.id].status is JobStatus.COMPLETED

    async def test_the_same_event_twice_is_recorded_once(self) -> None:
        store, job = _store_with_job()
        envelope = _envelope(rubric_result(_request_id(job), {}))

        await _record(store, envelope)
        second = await _record(store, envelope)

        assert second.outcome == "duplicate"
        assert len(store.tables.scores) == 1

    async def test_a_second_result_for_a_finished_request_changes_nothing(self) -> None:
        store, job = _store_with_job()

        await _record(store, _envelope(rubric_result(_request_id(job), {})))
        again = await _record(store, _envelope(rubric_result(_request_id(job), {}, overall=1.0)))

        assert again.outcome == "already_finished"
        assert len(store.tables.scores) == 1

    async def test_unknown_requests_are_acknowledged(self) -> None:
        store, _ = _store_with_job()

        outcome = await _record(store, _envelope(rubric_result(uuid4(), {})))

        assert outcome.outcome == "unknown_request"
        assert store.tables.scores == []

    async def test_error_callbacks_fail_the_job_with_the_error(self) -> None:
        store, job = _store_with_job()
        error = ErrorDetail(
            code=ErrorCode.RATE_LIMITED,
            message="slow down",
            correlation_id=uuid4(),
            service="llm_provider_service",
            operation="rubric",
        )
        result = LLMRubricResultV1(
            request_id=_request_id(job), error_detail=error, provider="openai", model="m"
        )

        outcome = await _record(store, _envelope(result))

        assert outcome.outcome == "failed"
        finished = store.tables.jobs[job.id]
        assert finished.status is JobStatus.FAILED
        assert finished.error is not None
        assert finished.error["code"] == "rate_limited"
        assert store.tables.outbox == []

    async def test_a_batch_rolled_back_counts_nothing_and_its_retry_counts_once(self) -> None:
        store, job = _store_with_job()
        envelope = _envelope(rubric_result(_request_id(job), {}))

        async def batch_failing_after_the_result() -> None:
            async with store() as uow:
                await record_rubric_result(uow, envelope, consumer="c", policy=POLICY)
                raise ConnectionError("the commit never happened")

        before = _scored_count()
        with pytest.raises(ConnectionError):
            await batch_failing_after_the_result()
        rolled_back = _scored_count()
        await _record(store, envelope)

        assert (rolled_back - before, _scored_count() - before) == (0.0, 1.0)
        assert store.tables.jobs[job.id].status is JobStatus.COMPLETED

    async def test_an_essay_queued_before_the_stages_existed_still_completes_it(self) -> None:
        # Migration sub0003 made the single essay job of the earlier design a `gpt` job with no
        # rag or fusion job beside it: its score is the essay's score, as before.
        assessment_id = uuid4()
        store, job = _store_with_job("gpt", assessment_id)
        store.tables.assessments[assessment_id] = AssessmentRecord(
            assessment_id, "intro-writing", Identity(user_id="u"), "submitted", datetime.now(UTC)
        )
        store.tables.score_records[assessment_id] = [
            StoredScoreRecord(
                QuestionScore("m", "t", QuestionType.THEORETICAL, ScoreStatus.SCORED, 1, 1)
            ),
            StoredScoreRecord(
                QuestionScore(
                    "argument",
                    "short-essay",
                    QuestionType.ESSAY,
                    ScoreStatus.PENDING,
                    2.0,
                    None,
                    str(job.response_id),
                ),
                job.id,
            ),
        ]
        webhook_id = uuid4()
        store.tables.webhooks[webhook_id] = StoredWebhook(
            webhook_id, assessment_id, "https://example.org/hook", "s", datetime.now(UTC)
        )

        await _record(store, _envelope(rubric_result(_request_id(job), {}, overall=5.0)))

        completed = store.tables.assessments[assessment_id]
        assert completed.status == "completed"
        assert completed.result is not None
        assert completed.result["total"] == 3.0
        assert completed.result["degraded"] is False
        [delivery] = store.tables.deliveries.values()
        assert delivery.payload["assessment_id"] == str(assessment_id)


def _scored_count() -> float:
    labels = {"outcome": "scored"}
    return REGISTRY.get_sample_value("huleedu_submission_rubric_results_total", labels) or 0.0
