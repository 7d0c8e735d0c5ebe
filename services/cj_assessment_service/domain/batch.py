"""The CJ batch: its state machine, budget, wave planning and completion decisions (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.pair_planning import (
    OrderedPair,
    PlanningHistory,
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
    return min(budget, total_pairs(n_essays)) if budget >= total_pairs(n_essays) else budget


@dataclass(frozen=True, slots=True)
class WavePlan:
    """The pairs of the next wave (empty when nothing useful is left to ask)."""

    pairs: list[OrderedPair]


def plan_first_wave(
    n_essays: int,
    budget: int,
    *,
    comparisons_per_essay: int,
    max_pairs_per_wave: int,
    rng: np.random.Generator,
) -> WavePlan:
    """All pairs when they fit in the budget; otherwise a coverage wave.

    The coverage wave is one shuffled ring (each essay twice, once as A and once as B), which
    connects the batch; the adaptive waves place the rest of the budget better than a wider
    coverage wave would (see `benchmarks/cj/pairing.py`).
    """
    if total_pairs(n_essays) <= budget:
        return WavePlan(plan_all_pairs(n_essays, rng))
    coverage = max(1, min(COVERAGE_PER_ESSAY, comparisons_per_essay))
    # The coverage wave must reach every essay, even when that exceeds the usual wave size.
    limit = min(budget, max(max_pairs_per_wave, n_essays))
    return WavePlan(plan_coverage_wave(n_essays, coverage, limit, rng))


def plan_next_wave(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    asked: list[OrderedPair],
    remaining_budget: int,
    *,
    max_pairs_per_wave: int,
    rng: np.random.Generator,
) -> WavePlan:
    """An adaptive wave within the remaining budget: about one comparison per essay.

    Small waves adapt more often to the refitted scores (fewer comparisons for the same
    accuracy, see `benchmarks/cj/pairing.py`) at the cost of more round trips to the judge.
    """
    n = scores.shape[0]
    history = PlanningHistory.from_pairs(n, asked)
    size = min(remaining_budget, max_pairs_per_wave, max(1, n // 2))
    return WavePlan(plan_adaptive_wave(scores, standard_errors, history, size, rng))


@dataclass(frozen=True, slots=True)
class WaveOutcome:
    """What to do once every pair of a wave is answered."""

    finish: CJCompletionReason | None
    fail_low_success: bool = False


def success_rate(completed: int, failed: int) -> float:
    """Share of answered comparisons that produced a verdict (1.0 before any answer)."""
    answered = completed + failed
    return 1.0 if answered == 0 else completed / answered


def decide_after_wave(
    *,
    n_essays: int,
    budget: int,
    planned: int,
    completed: int,
    failed: int,
    min_success_rate: float,
    unordered_pairs_compared: int,
    max_score_change: float | None,
    stability_threshold: float,
) -> WaveOutcome:
    """Fail on a low success rate, else finish when all pairs/budget/stability say so."""
    if success_rate(completed, failed) < min_success_rate or completed == 0:
        return WaveOutcome(finish=None, fail_low_success=True)
    if planned >= budget >= total_pairs(n_essays):
        return WaveOutcome(CJCompletionReason.ALL_PAIRS_COMPARED)
    if planned >= budget:
        return WaveOutcome(CJCompletionReason.BUDGET_EXHAUSTED)
    if max_score_change is not None and max_score_change < stability_threshold:
        return WaveOutcome(CJCompletionReason.STABLE)
    if unordered_pairs_compared >= total_pairs(n_essays) and planned >= 2 * total_pairs(n_essays):
        return WaveOutcome(CJCompletionReason.ALL_PAIRS_COMPARED)
    return WaveOutcome(finish=None)


def partial_scoring_due(*, answered: int, budget: int, threshold_pct: float) -> bool:
    """True when at least `threshold_pct` of the (effective) budget has been answered."""
    return budget > 0 and answered * 100 >= threshold_pct * budget


def recovery_decision(*, answered: int, planned: int, recovery_threshold_pct: float) -> bool:
    """True when a stuck batch has enough answers to be scored instead of failed."""
    return planned > 0 and answered * 100 >= recovery_threshold_pct * planned
