"""The batch state machine, budgets and completion decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.batch import (
    TERMINAL_STATES,
    BatchDecision,
    BatchState,
    InvalidTransition,
    comparison_budget,
    decide_after_answers,
    effective_budget,
    partial_scoring_due,
    recovery_decision,
    reliability_stop_applies,
    top_up_size,
    transition,
)
from common_core.events.cj import CJCompletionReason


class TestStateMachine:
    def test_the_happy_path_is_allowed(self) -> None:
        state = BatchState.INITIALIZING
        for target in (
            BatchState.GENERATING_PAIRS,
            BatchState.WAITING_CALLBACKS,
            BatchState.GENERATING_PAIRS,
            BatchState.WAITING_CALLBACKS,
            BatchState.SCORING,
            BatchState.COMPLETED,
        ):
            state = transition(state, target)
        assert state == BatchState.COMPLETED

    @pytest.mark.parametrize("state", [s for s in BatchState if not s.is_terminal])
    def test_failed_and_cancelled_are_reachable_from_every_live_state(
        self, state: BatchState
    ) -> None:
        assert transition(state, BatchState.FAILED) == BatchState.FAILED
        assert transition(state, BatchState.CANCELLED) == BatchState.CANCELLED

    def test_skipping_scoring_is_not_allowed(self) -> None:
        with pytest.raises(InvalidTransition):
            transition(BatchState.WAITING_CALLBACKS, BatchState.COMPLETED)

    @given(
        start=st.sampled_from(sorted(TERMINAL_STATES)),
        target=st.sampled_from(list(BatchState)),
    )
    def test_terminal_states_are_never_left(self, start: BatchState, target: BatchState) -> None:
        with pytest.raises(InvalidTransition):
            transition(start, target)


class TestBudget:
    def test_request_budget_wins_over_the_default(self) -> None:
        assert comparison_budget(10, 200, 10) == 200
        assert comparison_budget(10, None, 10) == 50

    def test_budget_covering_all_pairs_is_capped_to_them(self) -> None:
        assert effective_budget(10, 200) == 45
        assert effective_budget(100, 200) == 200


def _decide(
    *,
    n_essays: int = 20,
    budget: int = 100,
    planned: int = 60,
    completed: int = 40,
    failed: int = 0,
    target_met: bool = False,
    planning: bool = False,
    exhausted: bool = False,
) -> BatchDecision:
    """`decide_after_answers` for a 20-essay batch with 20 comparisons in flight, unless
    overridden."""
    return decide_after_answers(
        n_essays=n_essays,
        budget=budget,
        planned=planned,
        completed=completed,
        failed=failed,
        min_success_rate=0.8,
        reliability_target_met=target_met,
        planning_more=planning,
        nothing_left_to_plan=exhausted,
    )


class TestCompletionDecisions:
    def test_low_success_rate_fails_before_more_is_planned(self) -> None:
        assert _decide(completed=20, failed=20, planning=True).fail_low_success
        assert not _decide(completed=20, failed=20).fail_low_success

    def test_low_success_rate_fails_once_everything_is_answered(self) -> None:
        assert _decide(planned=100, completed=50, failed=50).fail_low_success

    def test_a_few_early_errors_do_not_fail_the_batch(self) -> None:
        assert not _decide(planned=60, completed=2, failed=3, planning=True).fail_low_success

    def test_all_pairs_compared_finishes(self) -> None:
        outcome = _decide(n_essays=10, budget=45, planned=45, completed=45)
        assert outcome.finish == CJCompletionReason.ALL_PAIRS_COMPARED

    def test_spent_budget_finishes_once_everything_is_answered(self) -> None:
        assert _decide(planned=100, completed=100).finish == CJCompletionReason.BUDGET_EXHAUSTED
        assert _decide(planned=100, completed=99).finish is None

    def test_every_orientation_answered_finishes_below_the_budget(self) -> None:
        outcome = _decide(n_essays=3, budget=10, planned=6, completed=6, exhausted=True)
        assert outcome.finish == CJCompletionReason.ALL_PAIRS_COMPARED

    def test_a_met_reliability_target_finishes_stable_with_answers_in_flight(self) -> None:
        assert _decide(target_met=True).finish == CJCompletionReason.STABLE

    def test_otherwise_the_batch_goes_on(self) -> None:
        outcome = _decide()
        assert outcome.finish is None
        assert not outcome.fail_low_success

    @given(
        budget=st.integers(1, 300),
        planned=st.integers(0, 300),
        answered=st.integers(0, 300),
        failed=st.integers(0, 300),
    )
    def test_a_finish_never_leaves_budget_unspent_without_a_reason(
        self, budget: int, planned: int, answered: int, failed: int
    ) -> None:
        planned = min(planned, budget)
        answered = min(answered, planned)
        failed = min(failed, answered)
        outcome = _decide(
            budget=budget, planned=planned, completed=answered - failed, failed=failed
        )
        if outcome.finish is not None:
            assert planned == answered == budget


class TestTopUp:
    def test_the_shortfall_is_planned_once_it_reaches_the_refill_step(self) -> None:
        size = {"budget": 1000, "target_outstanding": 48, "refill_step": 8}
        assert top_up_size(planned=100, pending=41, **size) == 0
        assert top_up_size(planned=100, pending=40, **size) == 8
        assert top_up_size(planned=100, pending=3, **size) == 45

    def test_nothing_in_flight_plans_at_once_and_the_budget_is_never_exceeded(self) -> None:
        size = {"target_outstanding": 48, "refill_step": 8}
        assert top_up_size(budget=1000, planned=1000, pending=0, **size) == 0
        assert top_up_size(budget=1000, planned=997, pending=45, **size) == 3
        assert top_up_size(budget=1000, planned=999, pending=0, **size) == 1

    @given(
        budget=st.integers(1, 2000),
        planned=st.integers(0, 2000),
        pending=st.integers(0, 2000),
        target=st.integers(1, 200),
        step=st.integers(1, 50),
    )
    def test_top_ups_respect_budget_and_target(
        self, budget: int, planned: int, pending: int, target: int, step: int
    ) -> None:
        planned = min(planned, budget)
        pending = min(pending, planned)
        count = top_up_size(
            budget=budget,
            planned=planned,
            pending=pending,
            target_outstanding=target,
            refill_step=step,
        )
        assert 0 <= count <= budget - planned
        assert pending + count <= max(target, pending)
        if pending == 0 and planned < budget:
            assert count > 0  # a batch with nothing in flight never stalls

    def test_the_reliability_stop_applies_to_adaptive_batches_only(self) -> None:
        assert not reliability_stop_applies(10, 45)
        assert reliability_stop_applies(100, 1000)


class TestThresholds:
    def test_thresholds(self) -> None:
        assert partial_scoring_due(answered=36, budget=45, threshold_pct=80)
        assert not partial_scoring_due(answered=35, budget=45, threshold_pct=80)
        assert recovery_decision(answered=39, planned=45, recovery_threshold_pct=80)
        assert not recovery_decision(answered=20, planned=45, recovery_threshold_pct=80)
