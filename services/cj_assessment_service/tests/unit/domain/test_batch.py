"""The batch state machine, budgets and completion decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.batch import (
    TERMINAL_STATES,
    BatchState,
    InvalidTransition,
    WaveOutcome,
    comparison_budget,
    decide_after_wave,
    effective_budget,
    partial_scoring_due,
    recovery_decision,
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
    planned: int = 40,
    completed: int = 40,
    failed: int = 0,
    max_score_change: float | None = None,
) -> WaveOutcome:
    """`decide_after_wave` for a 20-essay batch halfway through its budget, unless overridden."""
    return decide_after_wave(
        n_essays=n_essays,
        budget=budget,
        planned=planned,
        completed=completed,
        failed=failed,
        min_success_rate=0.8,
        unordered_pairs_compared=40,
        max_score_change=max_score_change,
        stability_threshold=0.05,
    )


class TestCompletionDecisions:
    def test_low_success_rate_fails(self) -> None:
        assert _decide(completed=20, failed=20).fail_low_success

    def test_all_pairs_compared_finishes(self) -> None:
        outcome = _decide(n_essays=10, budget=45, planned=45, completed=45)
        assert outcome.finish == CJCompletionReason.ALL_PAIRS_COMPARED

    def test_spent_budget_finishes(self) -> None:
        outcome = _decide(planned=100, completed=100)
        assert outcome.finish == CJCompletionReason.BUDGET_EXHAUSTED

    def test_stable_scores_finish(self) -> None:
        assert _decide(max_score_change=0.01).finish == CJCompletionReason.STABLE

    def test_otherwise_another_wave_follows(self) -> None:
        outcome = _decide(max_score_change=0.5)
        assert outcome.finish is None
        assert not outcome.fail_low_success

    def test_thresholds(self) -> None:
        assert partial_scoring_due(answered=36, budget=45, threshold_pct=80)
        assert not partial_scoring_due(answered=35, budget=45, threshold_pct=80)
        assert recovery_decision(answered=39, planned=45, recovery_threshold_pct=80)
        assert not recovery_decision(answered=20, planned=45, recovery_threshold_pct=80)
