"""The heuristic judge's probability: fitted on samples/ and calibrated there, bin by bin."""

from __future__ import annotations

import math

import pytest

from llm_provider_service.domain.heuristic_judge import MARGIN_SLOPE, compare_essays
from llm_provider_service.testing.heuristic_calibration import (
    SamplePair,
    calibration_bins,
    fit_margin_slope,
    sample_pairs,
)
from llm_provider_service.testing.judge_tricks import ESSAYS, PROMPT, RUBRIC


@pytest.fixture(scope="module")
def pairs() -> list[SamplePair]:
    return sample_pairs()


class TestCalibration:
    def test_the_stored_slope_is_the_fit_on_the_samples(self, pairs: list[SamplePair]) -> None:
        assert len(pairs) == 24 * 23 // 2
        assert fit_margin_slope(pairs) == pytest.approx(MARGIN_SLOPE, abs=0.05)

    def test_predicted_matches_observed_in_every_bin(self, pairs: list[SamplePair]) -> None:
        bins = calibration_bins(pairs)
        assert sum(row.pairs for row in bins) == len(pairs)
        for row in bins:
            # Within two binomial standard errors of the observed share, plus rounding.
            margin = 2 * math.sqrt(row.predicted * (1 - row.predicted) / row.pairs) + 0.01
            assert abs(row.observed - row.predicted) <= margin, row
        expected_error = sum(abs(r.observed - r.predicted) * r.pairs for r in bins) / len(pairs)
        assert expected_error < 0.03

    def test_the_fit_beats_a_coin_on_log_loss(self, pairs: list[SamplePair]) -> None:
        def loss(slope: float) -> float:
            return -sum(
                math.log(1 / (1 + math.exp(-slope * (p.margin if p.first_better else -p.margin))))
                for p in pairs
            ) / len(pairs)

        assert loss(MARGIN_SLOPE) < 0.5 * loss(0.0)


class TestComparisonProbability:
    def test_swapping_the_essays_gives_one_minus_the_probability(self) -> None:
        def compare(a: str, b: str) -> float:
            verdict = compare_essays(
                essay_a_id=a,
                essay_a=ESSAYS[a],
                essay_b_id=b,
                essay_b=ESSAYS[b],
                instructions=PROMPT,
                rubric=RUBRIC,
            )
            return verdict.probability_essay_a_better

        forward, backward = compare("s07", "s03"), compare("s03", "s07")
        assert forward > 0.5
        assert forward + backward == pytest.approx(1.0)

    def test_an_exact_tie_is_even(self) -> None:
        verdict = compare_essays(
            essay_a_id="x",
            essay_a=ESSAYS["s07"],
            essay_b_id="y",
            essay_b=ESSAYS["s07"],
            instructions=PROMPT,
            rubric=RUBRIC,
        )
        assert verdict.probability_essay_a_better == 0.5
