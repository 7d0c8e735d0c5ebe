"""Which comparisons of a batch go to its human judges, and to whom (pure).

A human verdict is worth most where the AI is least sure of the order, and the agreement figure
needs human decisions across the whole range of gaps, not only close ones (on close pairs any
two judges agree about half the time). So half of the human pairs are the closest pairs of the
AI's current fit (neighbours on its scale, by the gap in standard errors: where a verdict
changes the ranking most), and half a sample stratified over the AI's gaps (equal numbers from
each quarter of the gaps of random pairs), so the agreement figure describes the batch.

A human pair is never an orientation already asked (the database keeps one pair per
orientation); the other orientation of a pair the AI judged is free, and welcome: a human
decision on a pair the AI also judged is the most direct comparison of the two. No essay is
given to people much more often than the others (at most `per_essay_limit` human pairs each).
Each pair goes to one judge; the judges get equal shares (differing by at most one), each a
mix of both kinds of pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    weigh_soft_verdicts,
)
from cj_assessment_service.domain.pair_planning import OrderedPair

CLOSE_SHARE = 0.5
STRATA = 4
# Neighbours on the AI's scale considered for the close half (1 = adjacent essays).
NEIGHBOUR_REACH = 3
# Random candidate pairs drawn per stratified pair wanted.
CANDIDATES_PER_PAIR = 20


def deadline_problem(deadline: datetime, now: datetime, max_days: float) -> str | None:
    """Why a human judging deadline cannot be taken, or None: past (the judges would have no
    time), or more than `max_days` away (the batch would wait on its people that long)."""
    if deadline <= now:
        return "has passed: the judges would have no time to judge"
    if deadline - now > timedelta(days=max_days):
        return f"is more than {max_days:g} days away (HUMAN_DEADLINE_MAX_DAYS)"
    return None


def human_pair_count(budget: int, share: float) -> int:
    """How many comparisons the judges get, on top of the AI's `budget`: `share` of all the
    batch's comparisons (theirs and the AI's), at least one."""
    return max(1, math.ceil(share / (1.0 - share) * budget - 1e-9))


def plan_human_pairs_from_answers(
    answered: Comparisons, asked: Sequence[OrderedPair], count: int, *, rng: np.random.Generator
) -> list[OrderedPair]:
    """Up to `count` pairs for people from a fit of the answers so far (soft verdicts weighed)."""
    fit = fit_bradley_terry(weigh_soft_verdicts(answered))
    n = answered.n_essays
    errors = fit.standard_errors if fit.standard_errors is not None else np.ones(n)
    return choose_human_pairs(fit.scores, errors, asked, count, rng)


def choose_human_pairs(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    asked: Sequence[OrderedPair],
    count: int,
    rng: np.random.Generator,
) -> list[OrderedPair]:
    """Up to `count` ordered pairs for human judges from the AI's fit so far (`scores`,
    `standard_errors`) and every orientation asked already (`asked`)."""
    n = int(scores.shape[0])
    if n < 2 or count <= 0:
        return []
    taken = set(asked)
    chosen: list[OrderedPair] = []
    chosen_keys: set[tuple[int, int]] = set()
    uses = np.zeros(n, dtype=np.int64)
    limit = max(2, math.ceil(4 * count / n))

    def take(i: int, j: int) -> bool:
        key = (min(i, j), max(i, j))
        if i == j or key in chosen_keys or uses[i] >= limit or uses[j] >= limit:
            return False
        free = [o for o in ((i, j), (j, i)) if o not in taken]
        if not free:
            return False
        # Balance the order the essays are shown in: the one shown first less often goes first.
        pick = free[int(rng.integers(len(free)))] if len(free) == 2 else free[0]
        chosen.append(pick)
        chosen_keys.add(key)
        uses[i] += 1
        uses[j] += 1
        return True

    close_wanted = math.ceil(count * CLOSE_SHARE)
    for i, j in _closest_neighbours(scores, standard_errors):
        if len(chosen) >= close_wanted:
            break
        take(i, j)
    _stratified(scores, count - len(chosen), rng, take)
    if len(chosen) < count:  # strata exhausted (small batches): any free pair, closest first
        for i, j in _closest_neighbours(scores, standard_errors, reach=n - 1):
            if len(chosen) >= count:
                break
            take(i, j)
    return chosen


def _closest_neighbours(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    reach: int = NEIGHBOUR_REACH,
) -> list[tuple[int, int]]:
    """Pairs of essays up to `reach` places apart on the AI's scale, closest first by the gap
    in standard errors of the gap."""
    n = int(scores.shape[0])
    order = np.argsort(scores, kind="stable")
    firsts, seconds = [], []
    for distance in range(1, min(reach, n - 1) + 1):
        firsts.append(order[:-distance])
        seconds.append(order[distance:])
    first = np.concatenate(firsts)
    second = np.concatenate(seconds)
    spread = np.sqrt(standard_errors[first] ** 2 + standard_errors[second] ** 2) + 1e-9
    closeness = np.abs(scores[first] - scores[second]) / spread
    ranked = np.argsort(closeness, kind="stable")
    return [(int(first[k]), int(second[k])) for k in ranked]


def _stratified(
    scores: npt.NDArray[np.float64],
    wanted: int,
    rng: np.random.Generator,
    take: Callable[[int, int], bool],
) -> None:
    """Take about `wanted` random pairs, equally many from each quarter of the AI's gaps."""
    if wanted <= 0:
        return
    n = int(scores.shape[0])
    draws = max(STRATA, wanted * CANDIDATES_PER_PAIR)
    first = rng.integers(0, n, size=draws)
    second = (first + rng.integers(1, n, size=draws)) % n
    gap = np.abs(scores[first] - scores[second])
    edges = np.quantile(gap, np.linspace(0.0, 1.0, STRATA + 1)[1:-1])
    stratum = np.searchsorted(edges, gap, side="right")
    quotas = [wanted // STRATA + (1 if s < wanted % STRATA else 0) for s in range(STRATA)]
    for s in rng.permutation(STRATA):
        got = 0
        for k in np.flatnonzero(stratum == s):
            if got >= quotas[s]:
                break
            if take(int(first[k]), int(second[k])):
                got += 1


def assign_judges(pairs: Sequence[OrderedPair], judges: Sequence[str]) -> list[str]:
    """The judge of each pair, dealt in turn over `pairs`' order (the close pairs, then the
    stratified ones): every judge gets an equal share (differing by at most one) and, the turn
    running on from the close pairs into the stratified ones, some of each."""
    if not judges:
        raise ValueError("no judges to assign pairs to")
    return [judges[k % len(judges)] for k in range(len(pairs))]
