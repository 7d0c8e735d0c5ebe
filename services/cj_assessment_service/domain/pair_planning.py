"""Pair planning in waves: every pair when the budget allows, else coverage then adaptive waves.

Essays are indices 0..n-1. A planned comparison is an ordered pair (a, b): `a` is shown first.
Rules: a pair is never asked twice in the same orientation, and each essay's A/B positions are
kept balanced so the order effect does not bias any one essay.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

OrderedPair = tuple[int, int]

# Adaptive waves rank candidate pairs among each essay's nearest neighbours on the scale; above
# this many essays only that neighbourhood is scored instead of all n(n-1)/2 pairs.
ALL_CANDIDATES_MAX_ESSAYS = 300
NEIGHBOURHOOD = 12
REPEAT_PENALTY = 1.0


def total_pairs(n_essays: int) -> int:
    """Number of unordered pairs of n essays."""
    return n_essays * (n_essays - 1) // 2


@dataclass
class PlanningHistory:
    """What has been asked so far: ordered pairs and each essay's A/B position counts."""

    n_essays: int
    asked: set[OrderedPair] = field(default_factory=set)
    times_first: list[int] = field(default_factory=list)
    times_second: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.times_first:
            self.times_first = [0] * self.n_essays
            self.times_second = [0] * self.n_essays

    @classmethod
    def from_pairs(cls, n_essays: int, pairs: Iterable[OrderedPair]) -> PlanningHistory:
        """History of the pairs already planned (answered or not)."""
        history = cls(n_essays)
        for pair in pairs:
            history.record(pair)
        return history

    def record(self, pair: OrderedPair) -> None:
        """Remember one planned pair."""
        a, b = pair
        self.asked.add(pair)
        self.times_first[a] += 1
        self.times_second[b] += 1

    def times_compared(self, i: int, j: int) -> int:
        """How often the unordered pair {i, j} was asked (0, 1 or 2)."""
        return int((i, j) in self.asked) + int((j, i) in self.asked)

    def orient(self, i: int, j: int, rng: np.random.Generator) -> OrderedPair | None:
        """The orientation to ask {i, j} in (balancing A/B positions), or None if both were used."""
        free = [p for p in ((i, j), (j, i)) if p not in self.asked]
        if len(free) < 2:
            return free[0] if free else None

        def imbalance(pair: OrderedPair) -> int:
            a, b = pair
            return (self.times_first[a] - self.times_second[a]) - (
                self.times_first[b] - self.times_second[b]
            )

        first, second = imbalance((i, j)), imbalance((j, i))
        if first == second:
            return (i, j) if rng.random() < 0.5 else (j, i)
        return (i, j) if first < second else (j, i)


def plan_all_pairs(n_essays: int, rng: np.random.Generator) -> list[OrderedPair]:
    """Every unordered pair once, shuffled, with each essay first and second equally often.

    A round-robin tournament on an odd number of seats (one empty seat when n is even): seat i
    is shown first against seats i+1 .. i+(m-1)/2 (mod m), so every seat is first (m-1)/2 times
    and second (m-1)/2 times; an essay's imbalance is at most 1 (its game with the empty seat).
    """
    seats = n_essays if n_essays % 2 else n_essays + 1
    half = (seats - 1) // 2
    essay_at = rng.permutation(n_essays)
    planned = [
        (int(essay_at[i]), int(essay_at[(i + d) % seats]))
        for i in range(n_essays)
        for d in range(1, half + 1)
        if (i + d) % seats < n_essays
    ]
    return [planned[k] for k in rng.permutation(len(planned))]


def plan_coverage_wave(
    n_essays: int, comparisons_per_essay: int, limit: int, rng: np.random.Generator
) -> list[OrderedPair]:
    """A shuffled round-robin ring: essay k meets its ring neighbours at distance 1, 2, ...

    Each offset gives every essay two comparisons (one as A, one as B), so positions start
    balanced and everyone is connected before adaptive waves begin.
    """
    if n_essays < 2 or limit <= 0:
        return []
    ring = rng.permutation(n_essays)
    offsets = max(1, min((comparisons_per_essay + 1) // 2, (n_essays - 1) // 2 or 1))
    planned: list[OrderedPair] = []
    seen: set[frozenset[int]] = set()
    for offset in range(1, offsets + 1):
        for k in range(n_essays):
            a, b = int(ring[k]), int(ring[(k + offset) % n_essays])
            key = frozenset((a, b))
            if a == b or key in seen:
                continue
            seen.add(key)
            planned.append((a, b))
            if len(planned) >= limit:
                return planned
    return planned


def plan_adaptive_wave(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    history: PlanningHistory,
    size: int,
    rng: np.random.Generator,
) -> list[OrderedPair]:
    """Pick up to `size` pairs with the most expected information about the ranking.

    A candidate {i, j} is worth p(1-p) * (SE_i^2 + SE_j^2): close abilities (p near 1/2) and
    uncertain essays first, divided by (1 + penalty * times already compared). Each essay
    appears at most a few times per wave so the wave spreads over the batch.
    """
    n = scores.shape[0]
    if n < 2 or size <= 0:
        return []
    first, second = _candidate_pairs(scores)
    diff = scores[first] - scores[second]
    prob = 1.0 / (1.0 + np.exp(-diff))
    value = prob * (1.0 - prob) * (standard_errors[first] ** 2 + standard_errors[second] ** 2)
    compared = np.fromiter(
        (history.times_compared(int(i), int(j)) for i, j in zip(first, second, strict=True)),
        dtype=np.float64,
        count=first.shape[0],
    )
    value = value / (1.0 + REPEAT_PENALTY * compared)
    value[compared >= 2] = -1.0
    # Random tie-breaking so equal-valued candidates (e.g. before any fit) are not index-biased.
    tie_break = np.asarray(rng.random(value.shape[0]), dtype=np.float64)
    order = np.lexsort((tie_break, np.negative(value)))
    per_essay_cap = max(1, -(-2 * size // n) + 1)
    used = np.zeros(n, dtype=np.int64)
    planned: list[OrderedPair] = []
    for index in order:
        if value[index] < 0 or len(planned) >= size:
            break
        i, j = int(first[index]), int(second[index])
        if used[i] >= per_essay_cap or used[j] >= per_essay_cap:
            continue
        pair = history.orient(i, j, rng)
        if pair is None:
            continue
        history.record(pair)
        used[i] += 1
        used[j] += 1
        planned.append(pair)
    return planned


def _candidate_pairs(
    scores: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    n = scores.shape[0]
    if n <= ALL_CANDIDATES_MAX_ESSAYS:
        first, second = np.triu_indices(n, k=1)
        return first.astype(np.int64), second.astype(np.int64)
    order = np.argsort(scores, kind="stable")
    width = min(NEIGHBOURHOOD, n - 1)
    lows, highs = [], []
    for offset in range(1, width + 1):
        lows.append(order[:-offset])
        highs.append(order[offset:])
    low, high = np.concatenate(lows), np.concatenate(highs)
    return np.minimum(low, high).astype(np.int64), np.maximum(low, high).astype(np.int64)
