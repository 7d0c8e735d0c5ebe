"""What the pairs asked in both orders say about the judge: how often its verdict follows the
order rather than the essays, and whether its stated probabilities are calibrated.

The planner may ask a pair {x, y} as (x, y) and later as (y, x). With no ground truth, the
reverse-order verdict is the reference. A pair whose two verdicts picked the same position (the
essay shown first both times, or second both times) is an order flip: the two verdicts disagree
about the essays. Calibration: verdict 1 states c1, the probability that its pick is better, and
the reverse verdict c2 for its pick. If both are calibrated and the two asks err independently
given their correctness, they pick the same essay with probability c1 c2 + (1 - c1)(1 - c2).
Binned by the stated probability of a verdict's pick (each pair counted once per verdict, from
both sides), observed agreement below the expected one says the judge is overconfident at that
level. The check is one-sided: both asks see the same pair, so a close pair makes both likelier
to err and a calibrated judge's observed agreement runs above the expected one (by 0.03-0.07 at
stated 0.6-1 on simulated calibrated judges, tests/unit/domain/test_judge_consistency.py); a
judge whose probabilities are stretched 2x in logits agrees 0.05-0.14 less than expected there.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.bradley_terry import Comparisons

# Bins of the stated probability of a verdict's pick (0.5 to 1).
CALIBRATION_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Verdicts whose stated probability of their pick lies in [low, high) ([low, 1] for the
    last bin): how many, their mean stated probability, the agreement with the reverse order
    expected under calibration and the one observed."""

    low: float
    high: float
    verdicts: int
    mean_stated: float
    expected_agreement: float
    observed_agreement: float


@dataclass(frozen=True, slots=True)
class OrderConsistency:
    """Pairs answered in both orders, the share of them that flipped with the order (None with
    none), and the calibration bins of those with probabilities in both orders."""

    pairs_in_both_orders: int
    order_flip_rate: float | None
    calibration: list[CalibrationBin]


def _both_orders(comparisons: Comparisons) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Index pairs (k, l): comparison k asked (x, y) with x < y and l asked (y, x), each pair
    once (the first answer of each orientation)."""
    n = max(comparisons.n_essays, 1)
    a, b = comparisons.essay_a, comparisons.essay_b
    keys, first = np.unique(a * n + b, return_index=True)
    low_first = first[a[first] < b[first]]
    reverse = b[low_first] * n + a[low_first]
    position = np.minimum(np.searchsorted(keys, reverse), keys.shape[0] - 1)
    found = keys[position] == reverse
    return low_first[found].astype(np.int64), first[position[found]].astype(np.int64)


def order_consistency(comparisons: Comparisons) -> OrderConsistency:
    """The order-flip rate and the calibration bins of a batch's answered comparisons."""
    first, second = _both_orders(comparisons)
    count = int(first.shape[0])
    if count == 0:
        return OrderConsistency(0, None, [])
    won = comparisons.a_won
    flips = float(np.mean(won[first] == won[second]))
    return OrderConsistency(count, flips, _calibration(comparisons, first, second))


def _calibration(
    comparisons: Comparisons, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]
) -> list[CalibrationBin]:
    if comparisons.probability_a is None:
        return []
    q1, q2 = comparisons.probability_a[first], comparisons.probability_a[second]
    both = ~(np.isnan(q1) | np.isnan(q2))
    if not both.any():
        return []
    # Probability that essay x (shown first in ask 1, second in ask 2) is better, per ask.
    x1, x2 = q1[both], 1.0 - q2[both]
    # Each verdict of each pair, with the other ask as its reference.
    own = np.concatenate([x1, x2])
    other = np.concatenate([x2, x1])
    stated = np.maximum(own, 1.0 - own)  # the probability of the verdict's pick
    other_stated = np.maximum(other, 1.0 - other)
    expected = stated * other_stated + (1.0 - stated) * (1.0 - other_stated)
    observed = ((own >= 0.5) == (other >= 0.5)).astype(np.float64)
    bins: list[CalibrationBin] = []
    for low, high in pairwise(CALIBRATION_EDGES):
        inside = (stated >= low) & ((stated < high) | (high == CALIBRATION_EDGES[-1]))
        if inside.any():
            bins.append(
                CalibrationBin(
                    low,
                    high,
                    int(inside.sum()),
                    float(np.mean(stated[inside])),
                    float(np.mean(expected[inside])),
                    float(np.mean(observed[inside])),
                )
            )
    return bins
