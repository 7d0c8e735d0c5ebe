"""How often a batch's heavy computations run, from what they cost (pure).

A reliability check or a planning step of a batch of 100 essays takes milliseconds; of 10,000
essays, a tenth of a second to seconds. Run after a fixed number of answers, the big batch's
computations would take all of its time once answers arrive quickly. So the number of answers
between two runs follows the measured cost: at an answer rate r and a cost c, waiting for
r * c / share answers keeps that computation to `share` of the batch's time. With a slow
provider (or a small batch) r * c is tiny and the configured minimum applies, so the adaptivity
of small batches is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The share of a batch's time each kind of computation may take.
DEFAULT_CHECK_SHARE = 0.1
DEFAULT_PLANNING_SHARE = 0.2


def answers_between_runs(
    *, minimum: int, answer_rate: float, cost_seconds: float | None, share: float
) -> int:
    """Answers to wait for between two runs of a computation that costs `cost_seconds`, so that
    at `answer_rate` answers a second it takes at most `share` of the time (never fewer than
    `minimum`; `minimum` while its cost is unknown)."""
    if cost_seconds is None or answer_rate <= 0.0 or share <= 0.0:
        return max(1, minimum)
    return max(1, minimum, math.ceil(answer_rate * cost_seconds / share))


@dataclass(frozen=True, slots=True)
class PlanningPace:
    """When a batch plans more pairs, and how many it keeps in flight."""

    refill_step: int
    target_outstanding: int


def planning_pace(
    *,
    min_refill_step: int,
    min_outstanding: int,
    answer_rate: float,
    planning_cost_seconds: float | None,
    share: float = DEFAULT_PLANNING_SHARE,
) -> PlanningPace:
    """The refill step (answers between two top-ups, paced by the planning cost) and the
    comparisons to keep in flight: at least two refill steps, so the provider still has work
    while the answers of one step arrive and the next is planned."""
    step = answers_between_runs(
        minimum=min_refill_step,
        answer_rate=answer_rate,
        cost_seconds=planning_cost_seconds,
        share=share,
    )
    return PlanningPace(step, max(min_outstanding, 2 * step))
