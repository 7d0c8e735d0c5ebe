"""Pair planning in waves: every pair when the budget allows, else coverage then adaptive waves.

Essays are indices 0..n-1. A planned comparison is an ordered pair (a, b): `a` is shown first.
Rules: a pair is never asked twice in the same orientation, and each essay's A/B positions are
kept balanced so the order effect does not bias any one essay.

Re-asking (`closed_to_reversal`): with soft verdicts the reverse order of a pair is asked only
when its first verdict was uncertain (the judge's probability within REASK band of 1/2); a pair
whose first answer was sure, or is still in flight, is closed to reversal. Hard verdicts carry no
such signal, so their reverse stays open to the design as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain

import numpy as np
import numpy.typing as npt
from scipy import sparse

from cj_assessment_service.domain.bradley_terry import DEFAULT_PRIOR_PRECISION, Comparisons

OrderedPair = tuple[int, int]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Orientation flags of an unordered pair {low, high} in `PlanningHistory`.
_LOW_FIRST = 1
_HIGH_FIRST = 2

# Up to this many essays adaptive waves are a sequential design on the full n x n covariance
# (an inverse and O(n^2) work per pair). Above it, candidate pairs are only each essay's nearest
# neighbours on the scale, scored by a cheaper heuristic.
DESIGN_MAX_ESSAYS = 300
NEIGHBOURHOOD = 12
REPEAT_PENALTY = 1.0
# An essay's |times first - times second| may reach this; a pair that would push an essay past it
# (and past where it already is) is skipped while any other candidate remains.
POSITION_IMBALANCE_CAP = 2
# Lower bound of the density kernel's width (logits), for fits with tiny standard errors.
MIN_DENSITY_WIDTH = 0.05


# Re-ask the reverse order of a soft verdict only when the judge's probability was within this
# of 1/2 (the service's default `reask_uncertainty_band`).
DEFAULT_REASK_BAND = 0.15


def closed_to_reversal(
    answered: Comparisons, asked: Iterable[OrderedPair], band: float
) -> list[OrderedPair] | None:
    """Pairs whose reverse order must not be asked (the adaptive re-asking rule).

    With soft verdicts the reverse order of a pair is worth asking only when the first verdict
    was uncertain: a judge's probability within `band` of 1/2. Pairs answered more surely than
    that are closed, and so are pairs still in flight (their reverse may open once the answer
    shows it uncertain), including those planned in the same wave. Hard verdicts say nothing
    about their certainty: for a batch without soft verdicts the answer is None (the rule does
    not apply) and its planner weighs reversals by their information as before.
    A pair asked in both orders is never asked a third time, whether or not the orders agreed
    (their disagreement is in the fit and in the judge's consistency figures).
    """
    soft = answered.soft()
    if not soft.any():
        return None
    assert answered.probability_a is not None  # soft verdicts exist
    sure = soft & (np.abs(answered.probability_a - 0.5) > band)
    closed = list(
        zip(answered.essay_a[sure].tolist(), answered.essay_b[sure].tolist(), strict=True)
    )
    done = set(zip(answered.essay_a.tolist(), answered.essay_b.tolist(), strict=True))
    closed.extend(pair for pair in asked if pair not in done)
    return closed


def total_pairs(n_essays: int) -> int:
    """Number of unordered pairs of n essays."""
    return n_essays * (n_essays - 1) // 2


class PlanningHistory:
    """What has been asked so far: ordered pairs and each essay's A/B position balance.

    The pairs given at construction are kept per unordered pair {low, high} as the key
    low * n + high in a sorted array, with a flag for each orientation asked (tens of thousands
    of pairs at 10,000 essays: whole candidate sets are looked up at once by binary search);
    the pairs recorded while a wave is planned, as keys a * n + b in a set.
    """

    def __init__(self, n_essays: int) -> None:
        self.n_essays = n_essays
        self._keys: IntArray = np.zeros(0, dtype=np.int64)
        self._orientations: IntArray = np.zeros(0, dtype=np.int64)
        self._closed: BoolArray = np.zeros(0, dtype=np.bool_)
        # Whether pairs recorded while a wave is planned are closed to reversal in that wave.
        self.closes_recorded = False
        self._recorded: set[int] = set()
        self._balance: IntArray = np.zeros(n_essays, dtype=np.int64)

    @classmethod
    def from_pairs(
        cls,
        n_essays: int,
        pairs: Iterable[OrderedPair],
        closed: Iterable[OrderedPair] | None = None,
    ) -> PlanningHistory:
        """History of the pairs already planned (answered or not). With `closed` (the adaptive
        re-asking rule applies, see `closed_to_reversal`) the pairs in it count as asked in both
        orientations, and so do pairs planned from this history: their reverse is never
        planned."""
        history = cls(n_essays)
        history.closes_recorded = closed is not None
        listed = list(pairs)
        flat = np.fromiter(chain.from_iterable(listed), dtype=np.int64, count=2 * len(listed))
        first, second = flat[0::2], flat[1::2]
        history._balance = (
            np.bincount(first, minlength=n_essays) - np.bincount(second, minlength=n_essays)
        ).astype(np.int64)
        if listed:
            keys = np.minimum(first, second) * n_essays + np.maximum(first, second)
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
            history._keys = keys[starts]
            # Flag 1: asked as (low, high); flag 2: asked as (high, low).
            flags = np.where(first < second, _LOW_FIRST, _HIGH_FIRST)[order]
            history._orientations = np.bitwise_or.reduceat(flags, starts)
            history._closed = np.zeros(history._keys.shape[0], dtype=np.bool_)
            shut = np.array(
                [min(a, b) * n_essays + max(a, b) for a, b in closed or ()], dtype=np.int64
            )
            at = np.searchsorted(history._keys, shut)
            at = at[at < history._keys.shape[0]]
            history._closed[at[np.isin(history._keys[at], shut)]] = True
        return history

    def record(self, pair: OrderedPair) -> None:
        """Remember one planned pair."""
        a, b = pair
        self._recorded.add(a * self.n_essays + b)
        self._balance[a] += 1
        self._balance[b] -= 1

    def is_asked(self, a: int, b: int) -> bool:
        """Whether the ordered pair (a, b) was asked."""
        if a * self.n_essays + b in self._recorded:
            return True
        key = min(a, b) * self.n_essays + max(a, b)
        position = int(np.searchsorted(self._keys, key))
        if position == self._keys.shape[0] or int(self._keys[position]) != key:
            return False
        return bool(self._orientations[position] & (_LOW_FIRST if a < b else _HIGH_FIRST))

    def free_orientations(self, first: IntArray, second: IntArray) -> tuple[BoolArray, BoolArray]:
        """For candidate pairs: is (first, second) still free, and is (second, first)?"""
        keys = np.minimum(first, second) * self.n_essays + np.maximum(first, second)
        flags = np.zeros(keys.shape[0], dtype=np.int64)
        if self._keys.shape[0]:
            position = np.minimum(np.searchsorted(self._keys, keys), self._keys.shape[0] - 1)
            known = self._keys[position] == keys
            flags = np.where(known, self._orientations[position], 0)
            # A pair closed to reversal reads as asked both ways round.
            flags = np.where(known & self._closed[position], _LOW_FIRST | _HIGH_FIRST, flags)
        low_first, high_first = (flags & _LOW_FIRST) > 0, (flags & _HIGH_FIRST) > 0
        forward = np.where(first < second, low_first, high_first)
        backward = np.where(first < second, high_first, low_first)
        if self._recorded:
            recorded = np.fromiter(self._recorded, dtype=np.int64, count=len(self._recorded))
            forward |= np.isin(first * self.n_essays + second, recorded)
            backward |= np.isin(second * self.n_essays + first, recorded)
        return ~forward, ~backward

    def pairs(self) -> tuple[IntArray, IntArray]:
        """Every ordered pair asked, as arrays of first and second essays."""
        n = max(self.n_essays, 1)
        low, high = self._keys // n, self._keys % n
        forward = (self._orientations & _LOW_FIRST) > 0
        backward = (self._orientations & _HIGH_FIRST) > 0
        recorded = np.fromiter(self._recorded, dtype=np.int64, count=len(self._recorded))
        keys = np.union1d(
            np.concatenate([low[forward] * n + high[forward], high[backward] * n + low[backward]]),
            recorded,
        )
        return keys // n, keys % n

    def unbalancing(
        self, first: IntArray, second: IntArray, free: tuple[BoolArray, BoolArray]
    ) -> BoolArray:
        """For candidate pairs {first[k], second[k]} with their free orientations: would the
        best free orientation push an essay's position imbalance past the cap and past where
        it already is?"""
        forward_free, backward_free = free
        bf, bs = self._balance[first], self._balance[second]
        never = np.iinfo(np.int64).max
        forward = np.where(forward_free, np.maximum(np.abs(bf + 1), np.abs(bs - 1)), never)
        backward = np.where(backward_free, np.maximum(np.abs(bs + 1), np.abs(bf - 1)), never)
        worst = np.minimum(forward, backward)
        now = np.maximum(np.abs(bf), np.abs(bs))
        return np.asarray((worst > POSITION_IMBALANCE_CAP) & (worst > now), dtype=np.bool_)

    def orient(self, i: int, j: int, rng: np.random.Generator) -> OrderedPair | None:
        """The orientation to ask {i, j} in (balancing A/B positions), or None if both were used."""
        free = [p for p in ((i, j), (j, i)) if not self.is_asked(*p)]
        if len(free) < 2:
            return free[0] if free else None
        # The essay shown first less often so far goes first.
        balance_i, balance_j = int(self._balance[i]), int(self._balance[j])
        if balance_i == balance_j:
            return (i, j) if rng.random() < 0.5 else (j, i)
        return (i, j) if balance_i < balance_j else (j, i)


class _Candidates:
    """Candidate pairs of a wave with their free orientations and which of them would unbalance
    positions, kept current as pairs are recorded: recording {i, j} changes the balance of i and
    j only, so only the candidates of those two essays are looked at again."""

    def __init__(self, history: PlanningHistory, first: IntArray, second: IntArray) -> None:
        self.history, self.first, self.second = history, first, second
        self.free = history.free_orientations(first, second)
        # How often each candidate was asked (0, 1 or 2), whichever way round.
        self.compared = (~self.free[0]).astype(np.int64) + ~self.free[1]
        self.unbalancing = history.unbalancing(first, second, self.free)
        count = first.shape[0]
        # Essay x candidate incidence (a counting sort, in C): row k lists k's candidates.
        incidence = sparse.csr_matrix(
            (
                np.ones(2 * count),
                (np.concatenate([first, second]), np.tile(np.arange(count), 2)),
            ),
            shape=(history.n_essays, count),
        )
        self._by_essay, self._start = incidence.indices, incidence.indptr

    def record(self, index: int, pair: OrderedPair) -> None:
        """Record candidate `index` asked as `pair` in the history."""
        self.history.record(pair)
        forward = pair[0] == int(self.first[index])
        (self.free[0] if forward else self.free[1])[index] = False
        # Under the re-asking rule a pair just planned is in flight: closed to reversal.
        self.compared[index] = 2 if self.history.closes_recorded else self.compared[index] + 1
        touched = np.concatenate(
            [self._by_essay[self._start[essay] : self._start[essay + 1]] for essay in pair]
        )
        self.unbalancing[touched] = self.history.unbalancing(
            self.first[touched],
            self.second[touched],
            (self.free[0][touched], self.free[1][touched]),
        )


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
    *,
    verdict_weight: float = 1.0,
) -> list[OrderedPair]:
    """Pick up to `size` pairs that most reduce the expected rank error of the batch.

    `verdict_weight` is the information of one verdict relative to a hard one (the soft
    verdicts' quasi-likelihood weight, 1 / dispersion): a pair's Fisher information is
    verdict_weight * p(1-p), against the fit's prior.

    Up to `DESIGN_MAX_ESSAYS` essays this is a greedy sequential design on the model's
    covariance (see `_plan_design_wave`); above it, a cheaper score on each essay's nearest
    neighbours (see `_plan_neighbourhood_wave`).
    """
    n = scores.shape[0]
    if n < 2 or size <= 0:
        return []
    plan = _plan_design_wave if n <= DESIGN_MAX_ESSAYS else _plan_neighbourhood_wave
    return plan(scores, standard_errors, history, size, rng, verdict_weight=verdict_weight)


def _plan_design_wave(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    history: PlanningHistory,
    size: int,
    rng: np.random.Generator,
    *,
    verdict_weight: float,
) -> list[OrderedPair]:
    """Greedy density-weighted A-optimal design, one pair at a time.

    C is the covariance of the abilities implied by every pair asked so far (Fisher information
    of Bradley-Terry at the current scores plus the fit's Gaussian prior). An essay's rank error
    is about n * density(theta_i) * (its ability error), so the loss is
    tr(C W) with W = diag(density^2), the density estimated from the current scores with a
    kernel as wide as the typical standard error (essays whose order is uncertain). Asking
    {i, j} adds w = p(1-p) times (e_i - e_j)(e_i - e_j)^T to the information, which lowers the
    loss by w * u^T C W C u / (1 + w * u^T C u) with u = e_i - e_j (Sherman-Morrison). The best
    pair is taken, C and C W C are updated, and the next pair is scored against the wave so
    far, so one wave spreads over the essays that still need it instead of piling onto one.
    Informative pairs are close on the scale (p(1-p) near 1/4) but not only the very nearest:
    a chain of nearest neighbours pins down local order while leaving large rank errors.
    """
    n = scores.shape[0]
    first, second = np.triu_indices(n, k=1)
    weight = verdict_weight * _pair_information(scores[first] - scores[second])
    covariance = np.linalg.inv(_information_matrix(scores, history, verdict_weight))
    density = _score_density(scores, standard_errors)
    weighted = (covariance * density**2) @ covariance
    candidates = _Candidates(history, first, second)
    # Random tie-breaking far below any real difference, so equal candidates (e.g. before any
    # fit) are not index-biased.
    tie_break = np.asarray(rng.random(first.shape[0]), dtype=np.float64) * 1e-12
    planned: list[OrderedPair] = []
    flat = first * n + second
    while len(planned) < size:
        weighted_diag, covariance_diag = np.diagonal(weighted), np.diagonal(covariance)
        gain_num = weighted_diag[first] + weighted_diag[second] - 2 * weighted.ravel()[flat]
        diff_var = covariance_diag[first] + covariance_diag[second]
        diff_var = diff_var - 2 * covariance.ravel()[flat]
        value = weight * gain_num / (1.0 + weight * diff_var) + tie_break
        value[candidates.compared >= 2] = -np.inf
        balanced = np.where(candidates.unbalancing, -np.inf, value)
        best = int(np.argmax(balanced))
        if not np.isfinite(balanced[best]):
            best = int(np.argmax(value))  # only unbalancing pairs are left: take the best
        if not np.isfinite(value[best]):
            break
        i, j = int(first[best]), int(second[best])
        pair = history.orient(i, j, rng)
        if pair is None:  # both orientations taken; cannot happen while compared < 2
            candidates.compared[best] = 2
            continue
        candidates.record(best, pair)
        planned.append(pair)
        column = covariance[:, i] - covariance[:, j]
        weighted_column = weighted[:, i] - weighted[:, j]
        scale = weight[best] / (1.0 + weight[best] * (column[i] - column[j]))
        quadratic = weighted_column[i] - weighted_column[j]
        covariance -= scale * np.outer(column, column)
        weighted -= scale * (
            np.outer(column, weighted_column) + np.outer(weighted_column, column)
        ) - scale**2 * quadratic * np.outer(column, column)
    return planned


def _pair_information(diff: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    prob = 1.0 / (1.0 + np.exp(-diff))
    return np.asarray(prob * (1.0 - prob), dtype=np.float64)


def _information_matrix(
    scores: npt.NDArray[np.float64], history: PlanningHistory, verdict_weight: float
) -> npt.NDArray[np.float64]:
    """Bradley-Terry Fisher information of the pairs asked so far (each verdict weighing
    `verdict_weight`), plus the fit's prior."""
    n = scores.shape[0]
    information = np.zeros((n, n))
    a, b = history.pairs()
    if a.shape[0]:
        w = verdict_weight * _pair_information(scores[a] - scores[b])
        np.add.at(information, (a, a), w)
        np.add.at(information, (b, b), w)
        np.add.at(information, (a, b), -w)
        np.add.at(information, (b, a), -w)
    information[np.diag_indices(n)] += DEFAULT_PRIOR_PRECISION
    return information


def _score_density(
    scores: npt.NDArray[np.float64], standard_errors: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Essays per logit around each essay (Gaussian kernel, width = median standard error)."""
    positive = standard_errors[np.isfinite(standard_errors) & (standard_errors > 0)]
    width = max(float(np.median(positive)) if positive.size else 1.0, MIN_DENSITY_WIDTH)
    distance = (scores[:, None] - scores[None, :]) / width
    kernel = np.exp(-0.5 * distance**2)
    np.fill_diagonal(kernel, 0.0)
    return np.asarray(kernel.sum(axis=1) / width, dtype=np.float64)


def _plan_neighbourhood_wave(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    history: PlanningHistory,
    size: int,
    rng: np.random.Generator,
    *,
    verdict_weight: float,
) -> list[OrderedPair]:
    """Large batches: score candidate pairs among each essay's nearest neighbours on the scale.

    A candidate {i, j} is worth p(1-p) * (SE_i^2 + SE_j^2): close abilities (p near 1/2) and
    uncertain essays first, divided by (1 + penalty * times already compared). Each essay
    appears at most a few times per wave so the wave spreads over the batch.
    """
    n = scores.shape[0]
    first, second = _candidate_pairs(scores)
    information = verdict_weight * _pair_information(scores[first] - scores[second])
    value = information * (standard_errors[first] ** 2 + standard_errors[second] ** 2)
    candidates = _Candidates(history, first, second)
    value = value / (1.0 + REPEAT_PENALTY * candidates.compared)
    value[candidates.compared >= 2] = -1.0
    # Random tie-breaking so equal-valued candidates (e.g. before any fit) are not index-biased.
    tie_break = np.asarray(rng.random(value.shape[0]), dtype=np.float64)
    order = np.lexsort((tie_break, np.negative(value))).tolist()
    per_essay_cap = max(1, -(-2 * size // n) + 1)
    # Python lists: the loop below looks at one candidate at a time.
    firsts, seconds, values = first.tolist(), second.tolist(), value.tolist()
    used = [0] * n
    planned: list[OrderedPair] = []
    chosen: set[int] = set()
    for keep_balance in (True, False):  # balanced candidates first; the rest only if needed
        for index in order:
            if values[index] < 0 or len(planned) >= size:
                break
            i, j = firsts[index], seconds[index]
            if index in chosen or used[i] >= per_essay_cap or used[j] >= per_essay_cap:
                continue
            if keep_balance and candidates.unbalancing[index]:
                continue
            pair = history.orient(i, j, rng)
            if pair is None:
                continue
            chosen.add(index)
            candidates.record(index, pair)
            used[i] += 1
            used[j] += 1
            planned.append(pair)
    return planned


def _candidate_pairs(
    scores: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Each essay with its NEIGHBOURHOOD nearest essays on the current scale."""
    order = np.argsort(scores, kind="stable")
    offsets = range(1, min(NEIGHBOURHOOD, scores.shape[0] - 1) + 1)
    low = np.concatenate([order[:-offset] for offset in offsets])
    high = np.concatenate([order[offset:] for offset in offsets])
    return np.minimum(low, high).astype(np.int64), np.maximum(low, high).astype(np.int64)
