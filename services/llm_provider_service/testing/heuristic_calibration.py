"""How the heuristic judge's probability is calibrated: its margins on the pairs of samples/.

Every pair of the 24 sample essays (prompt.md as instructions, rubric.md as rubric) gives the
feature-score margin of one essay over the other and whether intended_order.csv ranks that
essay higher. A logistic curve through the origin, P(first better) = 1 / (1 + exp(-k x margin)),
is fitted by maximum likelihood (Newton's method on k); `domain.heuristic_judge.MARGIN_SLOPE`
stores the result. Run `python -m llm_provider_service.testing.heuristic_calibration` to refit
and print the predicted against the observed share of right verdicts per probability bin.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from llm_provider_service.domain.heuristic_judge import (
    MARGIN_SLOPE,
    margin_probability,
    text_features,
)
from llm_provider_service.testing.judge_tricks import ESSAYS, INTENDED_RANK, PROMPT, RUBRIC


@dataclass(frozen=True, slots=True)
class SamplePair:
    """The margin of the first essay over the second and whether the first is better."""

    margin: float
    first_better: bool


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Pairs whose preferred essay got a probability in [low, high): how many, the mean
    probability and the share where the preferred essay is the better one."""

    low: float
    high: float
    pairs: int
    predicted: float
    observed: float


def sample_pairs() -> list[SamplePair]:
    """Every unordered pair of the sample essays, once."""
    scores = {
        essay_id: text_features(text, PROMPT, rubric=RUBRIC).overall
        for essay_id, text in ESSAYS.items()
    }
    return [
        SamplePair(scores[a] - scores[b], INTENDED_RANK[a] < INTENDED_RANK[b])
        for a, b in itertools.combinations(sorted(ESSAYS), 2)
    ]


def fit_margin_slope(pairs: list[SamplePair], *, start: float = 1.0) -> float:
    """The maximum-likelihood slope k of P(first better) = 1 / (1 + exp(-k x margin))."""
    slope = start
    for _ in range(100):
        gradient = curvature = 0.0
        for pair in pairs:
            p = margin_probability(pair.margin, slope)
            gradient += (float(pair.first_better) - p) * pair.margin
            curvature += p * (1.0 - p) * pair.margin**2
        step = gradient / curvature
        slope += step
        if abs(step) < 1e-9:
            break
    return slope


def calibration_bins(
    pairs: list[SamplePair], slope: float = MARGIN_SLOPE, edges: tuple[float, ...] = ()
) -> list[CalibrationBin]:
    """Predicted against observed per bin of the preferred essay's probability (0.5..1)."""
    edges = edges or (0.5, 0.6, 0.7, 0.8, 0.9, 1.0 + 1e-12)
    bins = []
    for low, high in itertools.pairwise(edges):
        inside = []
        for pair in pairs:
            p = margin_probability(abs(pair.margin), slope)
            if low <= p < high:
                inside.append((p, (pair.margin > 0) == pair.first_better))
        if inside:
            predicted = sum(p for p, _ in inside) / len(inside)
            observed = sum(right for _, right in inside) / len(inside)
            bins.append(CalibrationBin(low, min(high, 1.0), len(inside), predicted, observed))
    return bins


def main() -> None:
    """Refit the slope on the samples and print the calibration table."""
    pairs = sample_pairs()
    slope = fit_margin_slope(pairs)
    print(f"{len(pairs)} pairs; fitted slope {slope:.3f} (stored MARGIN_SLOPE {MARGIN_SLOPE})")
    print("bin        pairs  predicted  observed")
    for row in calibration_bins(pairs, slope):
        print(
            f"{row.low:.1f}-{row.high:.1f}  {row.pairs:5d}  {row.predicted:9.3f}  "
            f"{row.observed:8.3f}"
        )
    loss = -sum(
        math.log(margin_probability(p.margin if p.first_better else -p.margin, slope))
        for p in pairs
    ) / len(pairs)
    print(f"mean log loss {loss:.3f} (a coin: {math.log(2):.3f})")


if __name__ == "__main__":
    main()
