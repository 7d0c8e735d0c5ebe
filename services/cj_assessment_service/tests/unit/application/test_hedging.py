"""Hedged requests through the use cases and an in-memory unit of work: which stragglers are asked
again, and that the first copy to answer decides its pair while the other only costs tokens."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.fakes import FakeUnitOfWork
from cj_assessment_service.testing.requests import error_result, essays, request_envelope, verdict
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import LLMComparisonRequestV1
from common_core.topics import Topic

REQUESTED = Topic.LLM_COMPARISON_REQUESTED.value
COMPLETED = Topic.CJ_ASSESSMENT_COMPLETED.value
HEDGING = {"hedge_max_share": 0.2, "hedge_latency_multiple": 3.0, "hedge_min_age_seconds": 5.0}


def requests(uow: FakeUnitOfWork) -> list[LLMComparisonRequestV1]:
    return [e.data for e in uow.events(REQUESTED)]


async def tail_with_one_straggler(
    uow: FakeUnitOfWork, *, age_seconds: float = 60.0, **overrides: Any
) -> tuple[CJWorkflow, LLMComparisonRequestV1]:
    """Five essays, all ten pairs planned (the whole budget); nine answered, the first one
    outstanding for `age_seconds`."""
    settings = Settings(**{**HEDGING, **overrides})
    flow = CJWorkflow(settings, seed=1)
    await flow.handle_request(uow, request_envelope(settings, "ref", essays(5), max_comparisons=10))
    straggler, *others = requests(uow)
    await flow.record_results(uow, [verdict(r) for r in others])
    for pair_id, pair in uow.pairs.rows.items():
        if pair.request_id == straggler.request_id:
            uow.pairs.rows[pair_id] = replace(
                pair, requested_at=pair.requested_at - timedelta(seconds=age_seconds)
            )
    return flow, straggler


class TestWhatIsHedged:
    async def test_a_straggler_past_the_threshold_is_asked_again_once(self) -> None:
        uow = FakeUnitOfWork()
        flow, straggler = await tail_with_one_straggler(uow)
        report = await flow.hedge_stragglers(uow)
        again = await flow.hedge_stragglers(uow)
        hedge = requests(uow)[-1]
        (batch,) = uow.batches.rows.values()
        assert (report.hedged, again.hedged, batch.hedged) == (1, 0, 1)
        assert len(requests(uow)) == 11
        assert hedge.request_id != straggler.request_id
        assert hedge.request_metadata == straggler.request_metadata
        assert (hedge.essay_a, hedge.essay_b) == (straggler.essay_a, straggler.essay_b)
        assert hedge.essay_instructions == straggler.essay_instructions

    async def test_a_recent_request_is_not_hedged(self) -> None:
        uow = FakeUnitOfWork()
        flow, _ = await tail_with_one_straggler(uow, age_seconds=1.0)
        assert (await flow.hedge_stragglers(uow)).hedged == 0
        assert len(requests(uow)) == 10

    async def test_a_share_of_zero_requests_nothing_extra(self) -> None:
        uow = FakeUnitOfWork()
        flow, _ = await tail_with_one_straggler(uow, hedge_max_share=0.0)
        assert not flow.hedging_enabled
        assert (await flow.hedge_stragglers(uow)).hedged == 0
        assert len(requests(uow)) == 10


class TestFirstAnswerWins:
    async def test_the_hedge_answers_first_and_the_late_original_changes_nothing(self) -> None:
        uow = FakeUnitOfWork()
        flow, straggler = await tail_with_one_straggler(uow)
        await flow.hedge_stragglers(uow)
        hedge = requests(uow)[-1]
        won = await flow.record_results(uow, [verdict(hedge)])
        (batch,) = uow.batches.rows.values()
        assert won.recorded == 1
        assert batch.state == BatchState.COMPLETED
        (completed,) = uow.events(COMPLETED)
        assert completed.data.completion_reason == CJCompletionReason.ALL_PAIRS_COMPARED
        assert batch.completed == 10
        assert batch.prompt_tokens == 10 * 10
        lost = await flow.record_results(uow, [verdict(straggler)])
        assert (lost.recorded, lost.late) == (0, 1)
        assert len(uow.events(COMPLETED)) == 1

    async def test_the_losing_copy_before_completion_costs_tokens_and_nothing_else(
        self,
    ) -> None:
        uow = FakeUnitOfWork()
        flow, straggler = await tail_with_one_straggler(uow)
        await flow.hedge_stragglers(uow)
        hedge = requests(uow)[-1]
        report = await flow.record_results(uow, [verdict(straggler), verdict(hedge)])
        redelivered = await flow.record_results(uow, [verdict(hedge)])
        (batch,) = uow.batches.rows.values()
        assert (report.recorded, report.hedge_losers) == (1, 1)
        assert (batch.completed, batch.state) == (10, BatchState.COMPLETED)
        assert batch.prompt_tokens == 11 * 10  # both copies were paid for
        assert sum(j["comparisons"] for j in batch.judges) == 10
        assert redelivered.duplicates == 1

    async def test_an_error_on_one_copy_waits_for_the_other(self) -> None:
        uow = FakeUnitOfWork()
        flow, straggler = await tail_with_one_straggler(uow)
        await flow.hedge_stragglers(uow)
        hedge = requests(uow)[-1]
        errored = await flow.record_results(uow, [error_result(straggler)])
        (batch,) = uow.batches.rows.values()
        assert (errored.hedge_errors, batch.failed, batch.state) == (
            1,
            0,
            BatchState.WAITING_CALLBACKS,
        )
        answered = await flow.record_results(uow, [verdict(hedge)])
        (batch,) = uow.batches.rows.values()
        assert answered.recorded == 1
        assert (batch.completed, batch.failed, batch.state) == (10, 0, BatchState.COMPLETED)
