"""The batch use cases driven through an in-memory unit of work (no Kafka, no database)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import hypothesis
import pytest
from hypothesis import strategies as st

from cj_assessment_service.application.ports import RequestSettings
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import BatchAlreadyFinished, BatchNotFound
from cj_assessment_service.testing.fakes import FakeUnitOfWork
from cj_assessment_service.testing.requests import error_result, essays, request_envelope, verdict
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import (
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
    LLMMode,
    TokenUsage,
)
from common_core.topics import Topic

REQUESTED = Topic.LLM_COMPARISON_REQUESTED.value
COMPLETED = Topic.CJ_ASSESSMENT_COMPLETED.value
FAILED = Topic.CJ_ASSESSMENT_FAILED.value


def workflow(**overrides: Any) -> tuple[CJWorkflow, Settings]:
    settings = Settings(**overrides)
    return CJWorkflow(settings, seed=1), settings


def requests(uow: FakeUnitOfWork) -> list[LLMComparisonRequestV1]:
    return [e.data for e in uow.events(REQUESTED)]


async def start(uow: FakeUnitOfWork, n: int, **overrides: Any) -> CJWorkflow:
    flow, settings = workflow(**overrides)
    await flow.handle_request(uow, request_envelope(settings, "ref", essays(n)))
    return flow


class TestRequests:
    async def test_a_request_plans_all_pairs_and_stages_their_requests(self) -> None:
        uow = FakeUnitOfWork()
        await start(uow, 10)
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.WAITING_CALLBACKS
        assert batch.planned == len(requests(uow)) == 45
        assert {r.request_metadata["batch_id"] for r in requests(uow)} == {str(batch.id)}

    async def test_requests_are_keyed_by_request_id_and_answered_under_the_batch_id(
        self,
    ) -> None:
        """Keys by request spread a batch over every LLM provider instance; the answers' key
        (`callback_key`) keeps them on one partition, so one CJ instance records the batch."""
        uow = FakeUnitOfWork()
        flow = await start(uow, 4, max_retries_per_pair=1)
        (batch,) = uow.batches.rows.values()
        staged = [(e.data, key) for t, e, key in uow.outbox if t.endswith(REQUESTED)]
        assert [key for request, key in staged] == [str(r.request_id) for r, _ in staged]
        assert {request.callback_key for request, _ in staged} == {str(batch.id)}
        await flow.record_results(uow, [error_result(staged[0][0], retryable=True)])
        (_, asked_again, key) = uow.outbox[-1]
        assert asked_again.data.request_id != staged[0][0].request_id
        assert (key, asked_again.data.callback_key) == (
            str(asked_again.data.request_id),
            str(batch.id),
        )

    async def test_the_same_event_or_a_live_ref_creates_no_second_batch(self) -> None:
        uow = FakeUnitOfWork()
        flow, settings = workflow()
        event = request_envelope(settings, "ref", essays(3))
        assert await flow.handle_request(uow, event) is not None
        assert await flow.handle_request(uow, event) is None
        assert await flow.handle_request(uow, request_envelope(settings, "ref", essays(3))) is None
        assert len(uow.batches.rows) == 1

    async def test_an_empty_request_fails_with_a_validation_error(self) -> None:
        uow = FakeUnitOfWork()
        await start(uow, 0)
        (failed,) = uow.events(FAILED)
        assert failed.data.error_detail.code == "validation"
        assert uow.events(REQUESTED) == []


class TestCallbacks:
    async def test_all_answers_complete_the_batch_with_one_event(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 5)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)])
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.COMPLETED
        (completed,) = uow.events(COMPLETED)
        assert completed.data.completion_reason == CJCompletionReason.ALL_PAIRS_COMPARED
        assert [r.essay_id for r in completed.data.rankings] == ["e4", "e3", "e2", "e1", "e0"]

    async def test_duplicates_and_unknown_ids_change_nothing(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 4)
        first = verdict(requests(uow)[0])
        stranger = LLMComparisonResultV1.model_validate(
            {**first.model_dump(), "request_id": "00000000-0000-0000-0000-000000000001"}
        )
        report = await flow.record_results(uow, [first, first, stranger])
        again = await flow.record_results(uow, [first])
        (batch,) = uow.batches.rows.values()
        assert (report.recorded, report.duplicates, report.orphans) == (1, 1, 1)
        assert (again.recorded, again.duplicates) == (0, 1)
        assert batch.completed == 1

    async def test_a_retryable_error_is_asked_again_under_a_new_request_id(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 3, max_retries_per_pair=1)
        original = requests(uow)[0]
        await flow.record_results(uow, [error_result(original, retryable=True)])
        retried = requests(uow)[-1]
        assert retried.request_metadata["pair_id"] == original.request_metadata["pair_id"]
        assert retried.request_id != original.request_id
        await flow.record_results(uow, [error_result(retried, retryable=True)])
        (batch,) = uow.batches.rows.values()
        assert (batch.completed, batch.failed) == (0, 1)

    async def test_a_low_success_rate_fails_the_batch(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 4, min_success_rate_threshold=0.8)
        pending = requests(uow)
        results = [error_result(r) if i % 2 else verdict(r) for i, r in enumerate(pending)]
        await flow.record_results(uow, results)
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.FAILED
        assert [e.data.error_detail.code for e in uow.events(FAILED)] == ["low_success_rate"]
        assert uow.events(COMPLETED) == []


def _priced(
    result: LLMComparisonResultV1, cost: float | None, *, model: str = "gpt-4o-mini"
) -> LLMComparisonResultV1:
    usage = TokenUsage(
        prompt_tokens=1000,
        completion_tokens=40,
        cached_prompt_tokens=600,
        cache_write_tokens=100,
        estimated_cost_usd=cost,
    )
    return result.model_copy(
        update={
            "usage": usage,
            "provider": "openai",
            "model": model,
            "prompt_version": "comparison_v1",
        }
    )


class TestResourceUsage:
    async def test_the_completed_event_sums_tokens_and_cost_and_names_the_judges(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 5)
        asked = requests(uow)
        answers = [_priced(verdict(r), 0.0002) for r in asked[:6]]
        answers += [_priced(verdict(r), 0.0005, model="gpt-4o") for r in asked[6:]]
        # Recorded in two fetched batches, as the consumer does.
        await flow.record_results(uow, answers[:3])
        await flow.record_results(uow, answers[3:])
        (completed,) = uow.events(COMPLETED)
        usage = completed.data.system_metadata.resource_usage
        assert usage.prompt_tokens == 10 * 1000
        assert usage.completion_tokens == 10 * 40
        assert usage.cached_prompt_tokens == 10 * 600
        assert usage.cache_write_tokens == 10 * 100
        assert usage.estimated_cost_usd == pytest.approx(6 * 0.0002 + 4 * 0.0005)
        assert usage.unpriced_comparisons == 0
        judges = {
            (j.provider, j.model, j.prompt_version): j.comparisons
            for j in completed.data.system_metadata.judges
        }
        assert judges == {
            ("openai", "gpt-4o-mini", "comparison_v1"): 6,
            ("openai", "gpt-4o", "comparison_v1"): 4,
        }

    async def test_one_answer_without_a_price_makes_the_cost_unknown_not_partial(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 4)
        asked = requests(uow)
        answers = [_priced(verdict(r), 0.0002) for r in asked[1:]]
        answers.append(_priced(verdict(asked[0]), None, model="my-local-model"))
        await flow.record_results(uow, answers)
        (completed,) = uow.events(COMPLETED)
        usage = completed.data.system_metadata.resource_usage
        assert usage.estimated_cost_usd is None
        assert usage.unpriced_comparisons == 1
        assert usage.prompt_tokens == len(asked) * 1000

    async def test_an_error_that_spent_no_tokens_leaves_the_cost_known(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 3, min_success_rate_threshold=0.5)
        asked = requests(uow)
        answers = [_priced(verdict(r), 0.0002) for r in asked[1:]]
        answers.append(error_result(asked[0]))  # no usage, no cost: nothing was spent
        await flow.record_results(uow, answers)
        (completed,) = uow.events(COMPLETED)
        usage = completed.data.system_metadata.resource_usage
        assert usage.estimated_cost_usd == pytest.approx((len(asked) - 1) * 0.0002)
        assert [j.comparisons for j in completed.data.system_metadata.judges] == [len(asked) - 1]


class TestContinuousPlanning:
    @hypothesis.settings(max_examples=15, deadline=None)
    @hypothesis.given(seed=st.integers(0, 10_000), chunk=st.integers(1, 12))
    async def test_answers_in_any_order_keep_the_target_in_flight_and_spend_the_budget_exactly(
        self, seed: int, chunk: int
    ) -> None:
        uow = FakeUnitOfWork()
        flow = await start(
            uow,
            12,
            target_outstanding_comparisons=10,
            refit_every_answers=3,
            default_target_reliability=None,
        )
        budget = 12 * 10 // 2
        draw = random.Random(seed)
        answered: set[str] = set()
        while True:
            (batch,) = uow.batches.rows.values()
            if batch.state.is_terminal:
                break
            waiting = [r for r in requests(uow) if str(r.request_id) not in answered]
            # Never only the held-back answers in flight while budget remains.
            assert batch.pending == len(waiting)
            if batch.planned < budget:
                assert batch.pending >= 10 - 3
            picked = draw.sample(waiting, min(chunk, len(waiting)))
            answered.update(str(r.request_id) for r in picked)
            await flow.record_results(uow, [verdict(r) for r in picked])
        ordered = [(r.essay_a.essay_id, r.essay_b.essay_id) for r in requests(uow)]
        assert len(ordered) == len(set(ordered)) == budget
        assert batch.planned == batch.completed == budget
        (completed,) = uow.events(COMPLETED)
        assert completed.data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED

    async def test_a_reliability_target_met_finishes_stable_with_the_stop_named(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 12, target_outstanding_comparisons=10, refit_every_answers=3)
        answered: set[str] = set()
        while not next(iter(uow.batches.rows.values())).state.is_terminal:
            waiting = [r for r in requests(uow) if str(r.request_id) not in answered]
            answered.update(str(r.request_id) for r in waiting)
            await flow.record_results(uow, [verdict(r) for r in waiting])
        (completed,) = uow.events(COMPLETED)
        statistics = completed.data.statistics
        assert completed.data.completion_reason == CJCompletionReason.STABLE
        assert statistics.stop_rule_reliability == "posterior_reliability"
        assert statistics.target_reliability == 0.9
        assert statistics.posterior_reliability is not None
        assert statistics.posterior_reliability >= 0.9
        assert statistics.comparisons_per_essay >= 6


class TestSoftVerdicts:
    async def test_a_judge_answering_about_a_half_spends_the_budget_and_claims_nothing(
        self,
    ) -> None:
        # Every verdict carries a probability near 0.5 (and a hard winner by its side): the
        # probabilities are stored per pair and fitted, no target is met, the scale separation and
        # split-half figures are marked not valid and the posterior reliability is 0.
        uow = FakeUnitOfWork()
        flow = await start(uow, 20, target_outstanding_comparisons=20, refit_every_answers=5)
        draw = random.Random(3)
        answered: set[str] = set()
        while not next(iter(uow.batches.rows.values())).state.is_terminal:
            waiting = [r for r in requests(uow) if str(r.request_id) not in answered]
            answered.update(str(r.request_id) for r in waiting)
            await flow.record_results(
                uow,
                [
                    verdict(r).model_copy(
                        update={"probability_essay_a_better": 0.5 + draw.uniform(-0.04, 0.04)}
                    )
                    for r in waiting
                ],
            )
        (completed,) = uow.events(COMPLETED)
        statistics = completed.data.statistics
        assert completed.data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
        assert statistics.posterior_reliability == 0.0
        assert statistics.not_valid_reliabilities == [
            "scale_separation_reliability",
            "split_half_reliability",
        ]
        stored = [p.probability_a_better for p in uow.pairs.rows.values()]
        assert len(stored) == 20 * 10 // 2
        assert all(p is not None and 0.46 <= p <= 0.54 for p in stored)


class TestAdaptiveReasking:
    async def _asked_pairs(self, sure: float | None) -> list[tuple[int, int]]:
        """Pairs a 20-essay batch asks (budget 10 per essay, no target) of a judge that picks the
        better essay and states `sure` for it (None: hard verdicts only)."""
        uow = FakeUnitOfWork()
        flow = await start(
            uow,
            20,
            default_target_reliability=None,
            target_outstanding_comparisons=20,
            refit_every_answers=5,
        )
        answered: set[str] = set()
        while not next(iter(uow.batches.rows.values())).state.is_terminal:
            waiting = [r for r in requests(uow) if str(r.request_id) not in answered]
            answered.update(str(r.request_id) for r in waiting)
            results = [verdict(r) for r in waiting]
            if sure is not None:
                results = [
                    v.model_copy(
                        update={
                            "probability_essay_a_better": sure
                            if v.winner == ComparisonWinner.ESSAY_A
                            else 1.0 - sure
                        }
                    )
                    for v in results
                ]
            await flow.record_results(uow, results)
        return [(p.essay_a, p.essay_b) for p in uow.pairs.rows.values()]

    async def test_a_sure_judge_is_never_asked_a_pair_in_reverse(self) -> None:
        asked = await self._asked_pairs(sure=0.9)
        assert len(asked) == 100
        assert len({frozenset(p) for p in asked}) == 100

    async def test_hard_verdicts_keep_reversals_open_to_the_design(self) -> None:
        # The reference: the same judge's hard verdicts; the planner asks some pairs both ways.
        asked = await self._asked_pairs(sure=None)
        assert len(asked) == 100
        assert len({frozenset(p) for p in asked}) < 100


class TestMonitor:
    async def _age(self, uow: FakeUnitOfWork, **changes: Any) -> None:
        (batch,) = uow.batches.rows.values()
        uow.batches.rows[batch.id] = replace(batch, **changes)

    async def test_a_stuck_batch_above_the_threshold_is_recovered(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10, stuck_batch_timeout_seconds=60)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)[:40]])
        await self._age(uow, last_activity_at=datetime.now(UTC) - timedelta(hours=1))
        report = await flow.check_stale_batches(uow)
        assert (report.detected, report.recovered) == (1, 1)
        (completed,) = uow.events(COMPLETED)
        assert completed.data.completion_reason == CJCompletionReason.FORCED_RECOVERY

    async def test_a_stuck_batch_below_the_threshold_fails(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10, stuck_batch_timeout_seconds=60)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)[:5]])
        await self._age(uow, last_activity_at=datetime.now(UTC) - timedelta(hours=1))
        report = await flow.check_stale_batches(uow)
        assert report.failed == 1
        assert [e.data.error_detail.code for e in uow.events(FAILED)] == ["stuck_batch"]

    async def test_a_batch_waiting_on_a_provider_batch_is_not_stuck_within_its_window(
        self,
    ) -> None:
        uow = FakeUnitOfWork()
        flow = await start(
            uow, 10, stuck_batch_timeout_seconds=60, stuck_batch_mode_timeout_seconds=7200
        )
        (batch,) = uow.batches.rows.values()
        batch_mode = RequestSettings(llm_config=LLMConfig(mode=LLMMode.BATCH))
        await self._age(
            uow,
            request_settings=batch_mode,
            last_activity_at=datetime.now(UTC) - timedelta(hours=1),
        )
        assert (await flow.check_stale_batches(uow)).detected == 0
        await self._age(uow, last_activity_at=datetime.now(UTC) - timedelta(hours=3))
        report = await flow.check_stale_batches(uow)
        assert (report.detected, report.failed) == (1, 1)
        assert uow.batches.rows[batch.id].state == BatchState.FAILED

    async def test_the_threshold_and_grace_trigger_partial_scoring(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10, completion_threshold_pct=80, partial_scoring_grace_seconds=30)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)[:36]])
        (batch,) = uow.batches.rows.values()
        assert batch.threshold_reached_at is not None
        assert (await flow.check_stale_batches(uow)).partial_scored == 0
        await self._age(uow, threshold_reached_at=datetime.now(UTC) - timedelta(minutes=1))
        assert (await flow.check_stale_batches(uow)).partial_scored == 1
        (batch,) = uow.batches.rows.values()
        assert batch.partial_scoring_triggered
        assert batch.state == BatchState.COMPLETED
        (completed,) = uow.events(COMPLETED)
        assert completed.data.completion_reason == CJCompletionReason.FORCED_RECOVERY
        assert completed.data.partial_scoring_triggered

    async def test_a_live_batch_can_be_cancelled_once(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 3)
        (batch,) = uow.batches.rows.values()
        cancelled = await flow.cancel(uow, batch.id)
        assert cancelled.state == BatchState.CANCELLED
        assert [e.data.error_detail.code for e in uow.events(FAILED)] == ["cancelled"]
        with pytest.raises(BatchAlreadyFinished):
            await flow.cancel(uow, batch.id)
        with pytest.raises(BatchNotFound):
            await flow.cancel(uow, uuid4())

    async def test_a_batch_active_within_the_timeout_is_left_alone(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(uow, 10, stuck_batch_timeout_seconds=600)
        await flow.record_results(uow, [verdict(r) for r in requests(uow)[:5]])
        report = await flow.check_stale_batches(uow)
        assert (report.detected, report.recovered, report.failed) == (0, 0, 0)
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.WAITING_CALLBACKS

    async def test_partial_scoring_with_too_many_failed_answers_fails_the_batch(self) -> None:
        uow = FakeUnitOfWork()
        flow = await start(
            uow,
            10,
            completion_threshold_pct=80,
            partial_scoring_grace_seconds=30,
            min_success_rate_threshold=0.9,
            max_retries_per_pair=0,
        )
        pending = requests(uow)[:36]
        results = [error_result(r) if i % 4 == 0 else verdict(r) for i, r in enumerate(pending)]
        await flow.record_results(uow, results)
        (batch,) = uow.batches.rows.values()
        if batch.state == BatchState.WAITING_CALLBACKS:
            await self._age(uow, threshold_reached_at=datetime.now(UTC) - timedelta(minutes=1))
            assert (await flow.check_stale_batches(uow)).partial_scored == 0
        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.FAILED
        assert [e.data.error_detail.code for e in uow.events(FAILED)] == ["low_success_rate"]
        assert uow.events(COMPLETED) == []
