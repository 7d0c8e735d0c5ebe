"""Hedged requests for a batch's straggler tail (Dean & Barroso, "The Tail at Scale"), pure.

Once the whole budget is planned, a batch only waits for its last answers; one slow answer then
holds the whole batch. A pair outstanding much longer than the batch's typical answer is asked a
second time, and whichever copy answers first wins. The extra calls are bounded by a share of the
budget, and each pair is hedged at most once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """When a straggler is asked again, and how many extra calls a batch may spend."""

    max_share: float
    """Extra calls per batch as a share of its budget; 0 turns hedging off."""
    latency_multiple: float
    """A pair is a straggler once outstanding this many times the batch's median answer time."""
    min_age_seconds: float
    """...and at least this long (a floor while the median is small)."""

    @property
    def enabled(self) -> bool:
        """True when a batch may hedge at all."""
        return self.max_share > 0

    def allowance(self, budget: int) -> int:
        """The most hedged calls a batch with this budget may make."""
        return math.floor(self.max_share * budget + 1e-9) if self.enabled else 0

    def threshold_seconds(self, median_latency: float) -> float:
        """How long a pair must have been outstanding before it is hedged."""
        return max(self.latency_multiple * median_latency, self.min_age_seconds)


@dataclass(frozen=True, slots=True)
class OutstandingPair:
    """A pair asked and not answered yet: how long ago it was asked, and whether it is hedged."""

    pair_id: UUID
    age_seconds: float
    hedged: bool


def choose_hedges(
    policy: HedgePolicy,
    *,
    budget: int,
    planned: int,
    hedged: int,
    outstanding: Sequence[OutstandingPair],
    median_latency: float | None,
) -> list[UUID]:
    """The pairs to ask again now, oldest first: none before the whole budget is planned (until
    then new pairs keep the provider busy) or before any answer has been timed (no typical answer
    time to be slower than), only pairs older than the threshold and not hedged yet, and no more
    than what is left of the batch's allowance."""
    room = policy.allowance(budget) - hedged
    if room <= 0 or planned < budget or median_latency is None:
        return []
    threshold = policy.threshold_seconds(median_latency)
    stragglers = sorted(
        (p for p in outstanding if not p.hedged and p.age_seconds > threshold),
        key=lambda p: p.age_seconds,
        reverse=True,
    )
    return [p.pair_id for p in stragglers[:room]]
