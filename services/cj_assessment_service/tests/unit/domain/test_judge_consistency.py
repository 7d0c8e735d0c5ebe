"""The order-flip rate and the reverse-order calibration check of pairs asked in both orders."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.judge_consistency import order_consistency

N = 200


def _both_orders(judge_a_better: np.ndarray, reverse_a_better: np.ndarray) -> Comparisons:
    """Pairs (i, i+1 mod N) asked as (i, j) and then (j, i), with the two asks' probabilities."""
    first = np.arange(N, dtype=np.int64)
    second = (first + 1) % N
    probability = np.concatenate([judge_a_better, reverse_a_better])
    return Comparisons(
        N,
        np.concatenate([first, second]),
        np.concatenate([second, first]),
        probability > 0.5,
        probability,
    )


def _posterior_judge(seed: int, overconfidence: float) -> Comparisons:
    """A judge that sees the ability difference (prior sd 1.4) through noise of sd 1 and states
    its posterior probability that A is better (calibrated), stretched by `overconfidence`;
    3,000 random pairs asked in both orders, the two asks' noise independent."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.0, N)
    a = rng.integers(0, N, 3000)
    b = (a + rng.integers(1, N, 3000)) % N

    def ask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        seen = theta[x] - theta[y] + rng.normal(0.0, 1.0, x.shape[0])
        mean, sd = seen * 2.0 / 3.0, np.sqrt(2.0 / 3.0)
        return np.asarray(norm.cdf(overconfidence * mean / sd), dtype=np.float64)

    probability = np.concatenate([ask(a, b), ask(b, a)])
    return Comparisons(
        N, np.concatenate([a, b]), np.concatenate([b, a]), probability > 0.5, probability
    )


class TestOrderFlips:
    def test_a_judge_that_always_picks_the_first_essay_flips_every_pair(self) -> None:
        always_first = _both_orders(np.full(N, 0.9), np.full(N, 0.9))
        consistency = order_consistency(always_first)
        assert consistency.pairs_in_both_orders == N
        assert consistency.order_flip_rate == 1.0

    def test_a_judge_that_follows_the_essays_never_flips(self) -> None:
        # The essay with the higher index is better, whichever way round it is shown.
        forward = np.where(np.arange(N) > (np.arange(N) + 1) % N, 0.8, 0.2)
        consistency = order_consistency(_both_orders(forward, 1.0 - forward))
        assert consistency.order_flip_rate == 0.0

    def test_pairs_asked_once_or_hard_verdicts_give_no_calibration(self) -> None:
        once = Comparisons(N, np.arange(3), np.arange(1, 4), np.ones(3, np.bool_))
        assert order_consistency(once).pairs_in_both_orders == 0
        assert order_consistency(once).order_flip_rate is None
        hard = _both_orders(np.full(N, 0.9), np.full(N, 0.9))
        unmarked = Comparisons(hard.n_essays, hard.essay_a, hard.essay_b, hard.a_won)
        assert order_consistency(unmarked).calibration == []
        assert order_consistency(unmarked).order_flip_rate == 1.0


class TestCalibrationAgainstTheReverseOrder:
    def test_a_calibrated_judge_agrees_at_least_as_often_as_expected(self) -> None:
        for calibration_bin in order_consistency(_posterior_judge(1, 1.0)).calibration:
            assert calibration_bin.verdicts > 100
            gap = calibration_bin.observed_agreement - calibration_bin.expected_agreement
            assert gap > -0.03, calibration_bin

    @pytest.mark.parametrize("low", [0.7, 0.8, 0.9])
    def test_an_overconfident_judge_agrees_less_often_than_it_claims(self, low: float) -> None:
        bins = {b.low: b for b in order_consistency(_posterior_judge(1, 2.0)).calibration}
        assert bins[low].observed_agreement < bins[low].expected_agreement - 0.04
