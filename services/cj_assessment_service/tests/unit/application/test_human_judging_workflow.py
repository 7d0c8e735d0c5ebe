"""Human judges beside the AI, through the batch use cases and an in-memory unit of work: who
gets which pairs, how their verdicts are recorded, the deadline release and the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cj_assessment_service.application.ports import PairRecord
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.testing.fakes import FakeUnitOfWork
from cj_assessment_service.testing.requests import essays, request_envelope, verdict
from common_core.events.cj import HumanJudge, HumanJudgingRequest
from common_core.events.llm import (
    ComparisonWinner,
    JudgeKind,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
)
from common_core.topics import Topic

REQUESTED = Topic.LLM_COMPARISON_REQUESTED.value
COMPLETED = Topic.CJ_ASSESSMENT_COMPLETED.value


def people(share: float = 0.2, *, hours: float = 1.0) -> HumanJudgingRequest:
    return HumanJudgingRequest(
        judges=[
            HumanJudge(judge_id="t-ada", display_name="Ada"),
            HumanJudge(judge_id="t-bo", display_name="Bo"),
        ],
        share=share,
        deadline=datetime.now(UTC) + timedelta(hours=hours),
    )


async def start(uow: FakeUnitOfWork, n: int, **overrides: Any) -> CJWorkflow:
    settings = Settings(**overrides)
    flow = CJWorkflow(settings, seed=3)
    await flow.handle_request(
        uow, request_envelope(settings, "ref", essays(n), human_judging=people())
    )
    return flow


def requests(uow: FakeUnitOfWork) -> list[LLMComparisonRequestV1]:
    return [e.data for e in uow.events(REQUESTED)]


def human_pairs(uow: FakeUnitOfWork) -> list[PairRecord]:
    return [p for p in uow.pairs.rows.values() if p.judge_kind == "human"]


def human_verdict(pair: PairRecord, judge: str | None = None) -> LLMComparisonResultV1:
    """A teacher who picks the better essay (the higher position: essays are e0 < e1 < ...)."""
    return LLMComparisonResultV1(
        request_id=pair.request_id,
        request_metadata={"batch_id": str(pair.batch_id), "pair_id": str(pair.id)},
        winner=ComparisonWinner.ESSAY_A
        if pair.essay_a > pair.essay_b
        else ComparisonWinner.ESSAY_B,
        confidence=3,
        provider="human",
        model="judging-page",
        judge_kind=JudgeKind.HUMAN,
        judge_id=judge or pair.judge_id,
    )


class TestPeoplesPairs:
    async def test_people_get_their_share_once_the_ai_has_answered_and_the_ai_never_sees_them(
        self,
    ) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10)
        asked = requests(uow)
        assert human_pairs(uow) == []  # nothing to tell close pairs from before the AI answers
        await flow.record_results(uow, [verdict(r) for r in asked[:12]])
        (batch,) = uow.batches.rows.values()
        given = human_pairs(uow)
        # 20 % of all comparisons, on top of the AI's 45: 12 of 57.
        assert batch.human_planned == len(given) == 12
        assert batch.planned == 45 + 12
        assert Counter(p.judge_id for p in given) == {"t-ada": 6, "t-bo": 6}
        assert requests(uow) == asked  # no request for a person's pair went to the AI
        orientations = {(p.essay_a, p.essay_b) for p in uow.pairs.rows.values()}
        assert len(orientations) == len(uow.pairs.rows)  # never an orientation asked before

    async def test_the_ai_finishing_first_leaves_the_batch_waiting_for_its_people(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)])
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.WAITING_CALLBACKS
        assert batch.human_pending == 12
        assert uow.events(COMPLETED) == []

    async def test_only_the_assigned_judge_answers_a_pair_and_the_report_has_the_people(
        self,
    ) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)])
        given = human_pairs(uow)
        other = {"t-ada": "t-bo", "t-bo": "t-ada"}
        impostor = human_verdict(given[0], judge=other[given[0].judge_id or ""])
        report = await flow.record_results(uow, [impostor])
        assert (report.recorded, report.orphans) == (0, 1)
        # An "AI" answer to a person's pair, and a person's answer to an AI pair, are no answers.
        ai_answer = LLMComparisonResultV1.model_validate(
            {**human_verdict(given[0]).model_dump(), "judge_kind": None, "judge_id": None}
        )
        assert (await flow.record_results(uow, [ai_answer])).orphans == 1

        report = await flow.record_results(uow, [human_verdict(p) for p in given])
        assert report.recorded == 12
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.COMPLETED
        assert (batch.human_answered, batch.human_pending) == (12, 0)
        (completed,) = uow.events(COMPLETED)
        people_report = completed.data.statistics.human_judging
        assert people_report is not None
        assert (people_report.assigned, people_report.judged, people_report.released) == (
            12,
            12,
            0,
        )
        assert people_report.judges_invited == 2
        # Both the AI and the teachers pick the better essay: full agreement, within its interval.
        assert people_report.agreement == 1.0
        assert people_report.agreement_low is not None
        assert people_report.agreement_low < 1.0
        assert people_report.largest_disagreements == []
        kinds = {j.judge_id: j.kind for j in people_report.judges}
        assert kinds == {"t-ada": "human", "t-bo": "human", "heuristic:test": "llm"}
        assert completed.data.completion_detail is None
        assert [r.essay_id for r in completed.data.rankings][:3] == ["e9", "e8", "e7"]


class TestDeadline:
    async def test_unjudged_pairs_are_released_at_the_deadline_and_the_event_says_so(
        self,
    ) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)])
        given = human_pairs(uow)
        await flow.record_results(uow, [human_verdict(p) for p in given[:3]])
        uow.pairs.submitted.add(given[3].id)  # staged by the page, not yet consumed
        (batch,) = uow.batches.rows.values()

        report = await flow.check_stale_batches(uow)
        assert report.human_pairs_released == 0  # before the deadline: nothing released

        past = datetime.now(UTC) - timedelta(seconds=1)
        uow.batches.rows[batch.id] = replace(batch, human_deadline=past)
        report = await flow.check_stale_batches(uow)
        assert report.human_pairs_released == 8  # the submitted one is on its way
        statuses = Counter(uow.pairs.rows[p.id].status for p in given)
        assert statuses == {PairStatus.COMPLETED: 3, PairStatus.RELEASED: 8, PairStatus.PENDING: 1}
        assert uow.events(COMPLETED) == []  # waiting for the submitted verdict

        await flow.record_results(uow, [human_verdict(given[3])])
        (completed,) = uow.events(COMPLETED)
        assert completed.data.statistics.human_judging is not None
        assert completed.data.statistics.human_judging.released == 8
        assert completed.data.completion_detail is not None
        assert "8 of 12" in completed.data.completion_detail

    async def test_a_batch_waiting_on_its_people_is_not_stuck_before_the_deadline(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 6, stuck_batch_timeout_seconds=1)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)])
        (batch,) = uow.batches.rows.values()
        idle = datetime.now(UTC) - timedelta(hours=1)
        uow.batches.rows[batch.id] = replace(batch, last_activity_at=idle)
        report = await flow.check_stale_batches(uow)
        assert (report.detected, report.failed, report.recovered) == (0, 0, 0)
        assert uow.batches.rows[batch.id].state == BatchState.WAITING_CALLBACKS

    async def test_a_request_whose_deadline_has_passed_fails_naming_the_field(self) -> None:
        uow = FakeUnitOfWork()
        settings = Settings()
        flow = CJWorkflow(settings, seed=1)
        late = people().model_copy(update={"deadline": datetime.now(UTC) - timedelta(minutes=1)})
        await flow.handle_request(
            uow, request_envelope(settings, "ref", essays(4), human_judging=late)
        )
        (failed,) = uow.events(Topic.CJ_ASSESSMENT_FAILED.value)
        assert failed.data.error_detail.details["field"] == "human_judging.deadline"
        assert "has passed" in failed.data.error_detail.message

    async def test_a_deadline_beyond_the_longest_allowed_fails_naming_the_field(self) -> None:
        uow = FakeUnitOfWork()
        settings = Settings(human_deadline_max_days=7)
        flow = CJWorkflow(settings, seed=1)
        far = people().model_copy(update={"deadline": datetime.now(UTC) + timedelta(days=8)})
        await flow.handle_request(
            uow, request_envelope(settings, "ref", essays(4), human_judging=far)
        )
        (failed,) = uow.events(Topic.CJ_ASSESSMENT_FAILED.value)
        assert failed.data.error_detail.details["field"] == "human_judging.deadline"
        assert "more than 7 days away" in failed.data.error_detail.message
