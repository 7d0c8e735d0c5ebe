"""An essay answer's gpt, rag and fusion jobs: fusion waits for both LLM stages, then completes
the essay, announces the fused score with its parts and completes the assessment."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from common_core.events.assessment import AssessmentScoredV1
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMRubricResultV1
from submission_service.application.ports import AssessmentRecord, ResponseRecord, ScoringJob
from submission_service.application.scoring import RubricPolicy, record_rubric_result
from submission_service.domain.assessments import (
    JobStatus,
    QuestionScore,
    QuestionType,
    ScoreStatus,
)
from submission_service.domain.essay_fusion import NO_MATERIAL_NOTE
from submission_service.domain.identity import Identity
from submission_service.testing.fakes import FakeTransactions, StoredScoreRecord, StoredWebhook
from submission_service.testing.harness import rubric_result

POLICY = RubricPolicy(callback_topic="t.llm_provider.rubric_result.v1", topic_prefix="t")


class Essay:
    """A store holding one submitted essay answer with its three stage jobs."""

    def __init__(self, *, rag_skipped: bool = False, rule_score: float = 3.0) -> None:
        self.store = FakeTransactions()
        self.tables = self.store.tables
        self.assessment_id = uuid4()
        response = ResponseRecord(
            id=uuid4(),
            identity=Identity(user_id="u"),
            question_id="short-essay",
            module_slug="argument",
            learning_outcome_id=None,
            content_id=None,
            answer_text="An essay.",
            answer_metadata={},
            created_at=datetime.now(UTC),
            completed_at=datetime.now(UTC),
        )
        self.response_id = response.id
        self.tables.responses[response.id] = response
        self.tables.assessments[self.assessment_id] = AssessmentRecord(
            self.assessment_id,
            "intro-writing",
            Identity(user_id="u"),
            "submitted",
            datetime.now(UTC),
        )
        webhook_id = uuid4()
        self.tables.webhooks[webhook_id] = StoredWebhook(
            webhook_id, self.assessment_id, "https://example.org/hook", "s", datetime.now(UTC)
        )
        self.gpt = self._job("gpt", JobStatus.QUEUED, uuid4())
        self.rag = (
            self._job("rag", JobStatus.SKIPPED, None, {"note": NO_MATERIAL_NOTE})
            if rag_skipped
            else self._job("rag", JobStatus.QUEUED, uuid4())
        )
        self.fusion = self._job("fusion", JobStatus.QUEUED, None)
        record = QuestionScore(
            "argument",
            "short-essay",
            QuestionType.ESSAY,
            ScoreStatus.PENDING,
            2.0,
            None,
            str(response.id),
            {"rule_score": {"score": rule_score, "words": 120, "sentences": 6}},
        )
        self.tables.score_records[self.assessment_id] = [StoredScoreRecord(record, self.fusion.id)]

    def _job(
        self,
        job_type: str,
        status: JobStatus,
        request_id: UUID | None,
        result: dict[str, object] | None = None,
    ) -> ScoringJob:
        job = ScoringJob(
            uuid4(),
            job_type,
            status,
            self.response_id,
            self.assessment_id,
            request_id,
            result=result,
        )
        self.tables.jobs[job.id] = job
        return job

    async def answer(self, job: ScoringJob, overall: float) -> None:
        """Deliver the LLM provider's result for a stage job."""
        if job.request_id is None:
            raise ValueError("this job sends no request")
        result = rubric_result(job.request_id, {}, overall=overall)
        envelope = EventEnvelope[LLMRubricResultV1](
            event_type="t.llm_provider.rubric_result.v1",
            source_service="llm_provider_service",
            correlation_id=uuid4(),
            data=result.model_copy(update={"citations": ["kp-1"] if job.job_type == "rag" else []}),
        )
        await self.record(envelope)

    async def record(self, envelope: EventEnvelope[LLMRubricResultV1]) -> None:
        """Record a result in its own committed transaction, as the consumer does."""
        async with self.store() as uow:
            await record_rubric_result(uow, envelope, consumer="c", policy=POLICY)

    def status(self, job: ScoringJob) -> JobStatus:
        """A job's current state."""
        return self.tables.jobs[job.id].status

    def score_record(self) -> QuestionScore:
        """The essay's score record."""
        [stored] = self.tables.score_records[self.assessment_id]
        return stored.record


class TestFusionWaitsForBothStages:
    async def test_one_stage_answered_leaves_fusion_queued(self) -> None:
        essay = Essay()
        await essay.answer(essay.gpt, 4.0)
        assert essay.status(essay.gpt) is JobStatus.COMPLETED
        assert essay.status(essay.fusion) is JobStatus.QUEUED
        assert essay.tables.outbox == []
        assert essay.tables.assessments[essay.assessment_id].status == "submitted"

    async def test_both_stages_answered_fuse_and_complete_the_assessment(self) -> None:
        essay = Essay(rule_score=3.0)
        await essay.answer(essay.gpt, 4.0)
        await essay.answer(essay.rag, 5.0)

        assert essay.status(essay.fusion) is JobStatus.COMPLETED
        fused = 0.2 * 3.0 + 0.4 * 4.0 + 0.4 * 5.0
        record = essay.score_record()
        assert record.status is ScoreStatus.SCORED
        assert record.detail["fusion"]["overall"] == fused
        assert record.score == round((fused - 1) / 4 * 2.0, 6)
        [(_, envelope, key)] = essay.tables.outbox
        event = envelope.data
        assert isinstance(event, AssessmentScoredV1)
        assert key == str(essay.response_id)
        assert event.stage == "fusion"
        assert event.overall == fused
        assert event.fusion is not None
        assert {p.stage: (p.score, p.weight) for p in event.fusion.parts} == {
            "rule_score": (3.0, 0.2),
            "gpt": (4.0, 0.4),
            "rag": (5.0, 0.4),
        }
        assert event.fusion.citations == ["kp-1"]
        assert event.fusion.disagreement is False
        completed = essay.tables.assessments[essay.assessment_id]
        assert completed.status == "completed"
        assert completed.result is not None
        [essay_result] = completed.result["essays"]
        assert essay_result["fusion"]["overall"] == fused
        [delivery] = essay.tables.deliveries.values()
        assert delivery.payload["result"]["essays"][0]["fusion"]["parts"]

    async def test_gpt_and_rag_more_than_a_point_apart_are_flagged(self) -> None:
        essay = Essay()
        await essay.answer(essay.gpt, 5.0)
        await essay.answer(essay.rag, 2.0)
        assert essay.score_record().detail["fusion"]["disagreement"] is True


class TestDegradedMode:
    async def test_a_skipped_rag_stage_fuses_rule_and_gpt_and_says_so(self) -> None:
        essay = Essay(rag_skipped=True, rule_score=2.0)
        await essay.answer(essay.gpt, 5.0)

        fusion = essay.score_record().detail["fusion"]
        parts = {p["stage"]: p for p in fusion["parts"]}
        assert parts["rag"] == {"stage": "rag", "status": "skipped", "score": None, "weight": 0.0}
        assert fusion["degraded"] is True
        assert fusion["overall"] == round((0.2 * 2.0 + 0.4 * 5.0) / 0.6, 3)
        result = essay.tables.assessments[essay.assessment_id].result
        assert result is not None
        assert result["degraded"] is True

    async def test_both_llm_stages_failing_fails_the_essay(self) -> None:
        essay = Essay(rag_skipped=True)
        if essay.gpt.request_id is None:
            raise AssertionError("gpt sends a request")
        failed = LLMRubricResultV1.model_validate(
            {
                "request_id": str(essay.gpt.request_id),
                "provider": "openai",
                "model": "m",
                "error_detail": {
                    "code": "parse_error",
                    "message": "not JSON",
                    "correlation_id": str(uuid4()),
                    "service": "llm_provider_service",
                    "operation": "rubric",
                },
            }
        )
        envelope = EventEnvelope[LLMRubricResultV1](
            event_type="t", source_service="llm", correlation_id=uuid4(), data=failed
        )
        await essay.record(envelope)

        assert essay.status(essay.fusion) is JobStatus.FAILED
        assert essay.score_record().status is ScoreStatus.FAILED
        result = essay.tables.assessments[essay.assessment_id].result
        assert result is not None
        assert result["essays_failed"] == 1
