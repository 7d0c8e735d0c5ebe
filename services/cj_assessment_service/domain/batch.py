"""The CJ batch: its state machine, budget, continuous planning and completion decisions (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    weigh_soft_verdicts,
)
from cj_assessment_service.domain.pair_planning import (
    OrderedPair,
    PlanningHistory,
    closed_to_reversal,
    plan_adaptive_wave,
    plan_all_pairs,
    plan_coverage_wave,
    total_pairs,
)
from common_core.events.cj import CJCompletionReason

COVERAGE_PER_ESSAY = 2


class BatchState(StrEnum):
    """Where a batch is in its life."""

    INITIALIZING = "INITIALIZING"
    GENERATING_PAIRS = "GENERATING_PAIRS"
    WAITING_CALLBACKS = "WAITING_CALLBACKS"
    SCORING = "SCORING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True for states a batch never leaves."""
        return self in TERMINAL_STATES


class PairStatus(StrEnum):
    """Where a comparison pair is (stored as these strings in `cj_pairs.status`)."""

    PENDING = "PENDING"
    """Asked, not answered yet (a retryable error asks it again and keeps it pending)."""
    COMPLETED = "COMPLETED"
    """Answered with a verdict."""
    FAILED = "FAILED"
    """Answered with an error that ends the pair (not retryable, or retries used up)."""
    RELEASED = "RELEASED"
    """Assigned to a human judge who had not judged it by the deadline: no longer planned (it
    counts neither as asked of the budget nor as answered)."""


TERMINAL_STATES = frozenset({BatchState.COMPLETED, BatchState.FAILED, BatchState.CANCELLED})
ACTIVE_STATES = tuple(s for s in BatchState if s not in TERMINAL_STATES)

_FORWARD: dict[BatchState, frozenset[BatchState]] = {
    BatchState.INITIALIZING: frozenset({BatchState.GENERATING_PAIRS, BatchState.COMPLETED}),
    BatchState.GENERATING_PAIRS: frozenset({BatchState.WAITING_CALLBACKS, BatchState.SCORING}),
    BatchState.WAITING_CALLBACKS: frozenset({BatchState.GENERATING_PAIRS, BatchState.SCORING}),
    BatchState.SCORING: frozenset({BatchState.COMPLETED}),
}


class InvalidTransition(ValueError):  # noqa: N818 - reads as the domain rule it enforces
    """A state change the batch state machine does not allow."""


def transition(current: BatchState, target: BatchState) -> BatchState:
    """The new state, if `current -> target` is allowed; FAILED/CANCELLED from any live state."""
    if current.is_terminal:
        raise InvalidTransition(f"batch is {current}; terminal states are final")
    if target in (BatchState.FAILED, BatchState.CANCELLED) or target in _FORWARD[current]:
        return target
    raise InvalidTransition(f"{current} -> {target} is not a valid transition")


def comparison_budget(
    n_essays: int, max_comparisons: int | None, comparisons_per_essay: int
) -> int:
    """Comparisons the batch may use: the request's budget, else n * per-essay / 2."""
    if max_comparisons is not None:
        return max_comparisons
    return max(1, math.ceil(n_essays * comparisons_per_essay / 2))


def effective_budget(n_essays: int, budget: int) -> int:
    """The budget capped at all pairs when it covers them (they are then planned at once)."""
    return min(budget, total_pairs(n_essays))


def plan_opening_pairs(
    n_essays: int,
    budget: int,
    *,
    comparisons_per_essay: int,
    max_pairs_per_step: int,
    rng: np.random.Generator,
) -> list[OrderedPair]:
    """All pairs when they fit in the budget; otherwise a coverage ring.

    The coverage ring (each essay twice, once as A and once as B) connects the batch; the
    adaptive top-ups place the rest of the budget better than a wider coverage would (see
    `benchmarks/cj/pairing.py`).
    """
    if total_pairs(n_essays) <= budget:
        return plan_all_pairs(n_essays, rng)
    coverage = max(1, min(COVERAGE_PER_ESSAY, comparisons_per_essay))
    # Coverage must reach every essay, even when that exceeds the usual planning step.
    limit = min(budget, max(max_pairs_per_step, n_essays))
    return plan_coverage_wave(n_essays, coverage, limit, rng)


def reliability_stop_applies(n_essays: int, budget: int) -> bool:
    """The reliability stop rule applies to adaptive batches only: when every pair fits in the
    budget they are all requested at once, so stopping early would save no comparison."""
    return budget < total_pairs(n_essays)


def top_up_size(
    *, budget: int, planned: int, pending: int, target_outstanding: int, refill_step: int
) -> int:
    """How many pairs to plan now so that `target_outstanding` comparisons are in flight.

    Planning waits until the shortfall reaches `refill_step` (each top-up refits the model, so
    a refit per answer would buy little), unless nothing is in flight or the shortfall already
    covers the rest of the budget. 0 means: wait for more answers.
    """
    remaining = max(0, budget - planned)
    room = min(max(0, target_outstanding - pending), remaining)
    if room == 0:
        return 0
    if pending == 0 or room >= min(refill_step, remaining):
        return room
    return 0


def plan_top_up(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    asked: list[OrderedPair],
    count: int,
    *,
    rng: np.random.Generator,
    closed: list[OrderedPair] | None = None,
    verdict_weight: float = 1.0,
) -> list[OrderedPair]:
    """Up to `count` adaptive pairs given every pair asked so far (answered or in flight).

    Pairs still in flight count as asked: they are never planned again in the same orientation
    and their expected information is already in the design (see `plan_adaptive_wave`). The
    reverse of a pair in `closed` is never planned, nor of a pair planned now, when `closed` is
    given (the re-asking rule applies; see `closed_to_reversal`).
    """
    history = PlanningHistory.from_pairs(scores.shape[0], asked, closed)
    return plan_adaptive_wave(
        scores, standard_errors, history, count, rng, verdict_weight=verdict_weight
    )


def plan_from_answers(
    answered: Comparisons,
    asked: list[OrderedPair],
    count: int,
    *,
    rng: np.random.Generator,
    reask_band: float,
) -> list[OrderedPair]:
    """Up to `count` adaptive pairs from a fit of the answers so far (soft verdicts with their
    quasi-likelihood weight), re-asking a pair in reverse only where its first soft verdict was
    uncertain (within `reask_band` of 1/2)."""
    weighed = weigh_soft_verdicts(answered)
    fit = fit_bradley_terry(weighed)
    n = answered.n_essays
    errors = fit.standard_errors if fit.standard_errors is not None else np.ones(n)
    # In-flight pairs of a batch judged softly are expected to weigh as its soft verdicts do.
    weight = weighed.soft_weight if weighed.soft_weight is not None else 1.0
    return plan_top_up(
        fit.scores,
        errors,
        asked,
        count,
        rng=rng,
        closed=closed_to_reversal(weighed, asked, reask_band),
        verdict_weight=weight,
    )


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """What a batch does after new answers: fail, finish (with a reason), or go on."""

    finish: CJCompletionReason | None
    fail_low_success: bool = False


def success_rate(completed: int, failed: int) -> float:
    """Share of answered comparisons that produced a verdict (1.0 before any answer)."""
    answered = completed + failed
    return 1.0 if answered == 0 else completed / answered


def decide_after_answers(
    *,
    n_essays: int,
    budget: int,
    planned: int,
    completed: int,
    failed: int,
    min_success_rate: float,
    reliability_target_met: bool,
    planning_more: bool = False,
    nothing_left_to_plan: bool = False,
) -> BatchDecision:
    """Fail on a low success rate; finish when the reliability target is met (`STABLE`), or
    once everything planned is answered and the budget (or the pairs) are used up.

    The success rate is judged when nothing is in flight any more, and before more of the budget
    is spent on planning (`planning_more`) once there are as many answers as essays (a couple of
    early errors say little).
    """
    answered = completed + failed
    settled = planned == answered and (planned >= budget or nothing_left_to_plan)
    judged = settled or (planning_more and answered >= n_essays)
    if judged and (
        success_rate(completed, failed) < min_success_rate or (settled and completed == 0)
    ):
        return BatchDecision(finish=None, fail_low_success=True)
    if reliability_target_met:
        return BatchDecision(CJCompletionReason.STABLE)
    if not settled:
        return BatchDecision(finish=None)
    if budget >= total_pairs(n_essays) or nothing_left_to_plan:
        return BatchDecision(CJCompletionReason.ALL_PAIRS_COMPARED)
    return BatchDecision(CJCompletionReason.BUDGET_EXHAUSTED)


def partial_scoring_due(*, answered: int, budget: int, threshold_pct: float) -> bool:
    """True when at least `threshold_pct` of the (effective) budget has been answered."""
    return budget > 0 and answered * 100 >= threshold_pct * budget


def recovery_decision(*, answered: int, planned: int, recovery_threshold_pct: float) -> bool:
    """True when a stuck batch has enough answers to be scored instead of failed."""
    return planned > 0 and answered * 100 >= recovery_threshold_pct * planned
