"""The reliability stop rule: when it may check, when it is met, that its estimate is not fooled
by coin-flip judgements on an adaptive design (scale separation and split-half are), and that it
is calibrated: its claim matches the achieved squared correlation with known abilities."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cj_assessment_service.domain import bradley_terry
from cj_assessment_service.domain.batch import plan_opening_pairs, plan_top_up
from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    scale_separation_reliability,
    split_half_reliability,
    weigh_soft_verdicts,
)
from cj_assessment_service.domain.stopping import (
    MIN_ABILITY_VARIANCE,
    StopRule,
    ability_variance,
    posterior_reliability,
)

N = 40


def rule(target: float | None = 0.8) -> StopRule:
    return StopRule(target_reliability=target, min_comparisons_per_essay=6, check_every=10)


class TestWhenTheRuleChecks:
    def test_no_target_never_checks(self) -> None:
        assert not rule(None).check_due(n_essays=N, answered_now=400, last_checked=None)

    def test_no_check_below_the_minimum_per_essay(self) -> None:
        assert not rule().check_due(n_essays=N, answered_now=119, last_checked=None)

    def test_the_first_check_comes_when_the_minimum_is_reached(self) -> None:
        assert rule().check_due(n_essays=N, answered_now=120, last_checked=None)

    def test_later_checks_come_every_check_every_answers(self) -> None:
        assert not rule().check_due(n_essays=N, answered_now=129, last_checked=120)
        assert rule().check_due(n_essays=N, answered_now=130, last_checked=120)

    @given(last=st.integers(120, 2000), step=st.integers(0, 500))
    def test_due_exactly_when_check_every_answers_arrived(self, last: int, step: int) -> None:
        due = rule().check_due(n_essays=N, answered_now=last + step, last_checked=last)
        assert due == (step >= 10)

    def test_met_needs_an_estimate_at_or_above_the_target(self) -> None:
        assert rule().met(0.8)
        assert not rule().met(0.79)
        assert not rule().met(None)
        assert not rule(None).met(0.99)


def _adaptive_coin_flips(seed: int, per_essay: int) -> Comparisons:
    """An adaptive design (as the service plans it) judged by tossing a coin."""
    rng = np.random.default_rng(seed)
    budget = N * per_essay // 2
    asked = plan_opening_pairs(N, budget, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng)
    wins = list(rng.random(len(asked)) < 0.5)
    while len(asked) < budget:
        comparisons = Comparisons.from_lists(N, [p[0] for p in asked], [p[1] for p in asked], wins)
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        more = plan_top_up(
            fit.scores, fit.standard_errors, asked, min(8, budget - len(asked)), rng=rng
        )
        if not more:
            break
        asked += more
        wins += list(rng.random(len(more)) < 0.5)
    return Comparisons.from_lists(N, [p[0] for p in asked], [p[1] for p in asked], wins)


class TestHonesty:
    def test_coin_flips_on_an_adaptive_design_do_not_look_reliable(self) -> None:
        comparisons = _adaptive_coin_flips(seed=3, per_essay=20)
        estimate = posterior_reliability(comparisons)
        assert estimate is not None
        assert estimate < 0.5

    def test_a_consistent_judge_reaches_a_high_reliability(self) -> None:
        rng = np.random.default_rng(5)
        theta = rng.normal(0.0, 2.5, N)
        a = rng.integers(0, N, 600)
        b = (a + rng.integers(1, N, 600)) % N
        won = rng.random(600) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
        comparisons = Comparisons(N, a.astype(np.int64), b.astype(np.int64), won)
        estimate = posterior_reliability(comparisons)
        assert estimate is not None
        assert estimate > 0.85

    def test_the_reliabilities_the_rule_avoids_are_fooled_by_the_same_coin_flips(self) -> None:
        comparisons = _adaptive_coin_flips(seed=3, per_essay=20)
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        ssr = scale_separation_reliability(fit.scores, fit.standard_errors)
        split_half = split_half_reliability(comparisons)
        assert ssr is not None
        assert split_half is not None
        assert min(ssr, split_half) > 0.5


Judge = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]
HARD = np.nan  # the probability of a hard verdict


def _coin(a: np.ndarray, _b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(rng.random(a.shape[0]) < 0.5), np.full(a.shape[0], HARD)


def _prefers_first(
    a: np.ndarray, _b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(rng.random(a.shape[0]) < 0.75), np.full(a.shape[0], HARD)


def _always_first(
    a: np.ndarray, _b: np.ndarray, _rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    return np.ones(a.shape[0], dtype=np.bool_), np.full(a.shape[0], HARD)


def _soft_about_half(
    a: np.ndarray, _b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    probability = np.clip(0.5 + rng.normal(0.0, 0.03, a.shape[0]), 0.0, 1.0)
    return probability > 0.5, probability


def _soft_prefers_first(
    a: np.ndarray, _b: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    probability = 1.0 / (1.0 + np.exp(-(1.1 + rng.normal(0.0, 1.0, a.shape[0]))))
    return probability > 0.5, probability


def _adaptive_noise(seed: int, judge: Judge, n: int = 60, per_essay: int = 20) -> Comparisons:
    """Essays of equal quality on the service's adaptive design: the coverage ring, then top-ups
    of 24 planned from a fit of the answers so far, judged by `judge` (first, second, rng):
    verdicts and probabilities (NaN: a hard verdict)."""
    rng = np.random.default_rng(seed)
    budget = n * per_essay // 2
    asked = plan_opening_pairs(n, budget, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng)
    wins: list[bool] = []
    probabilities: list[float] = []
    while True:
        new = np.array(asked[len(wins) :], dtype=np.int64).reshape(-1, 2)
        won, probability = judge(new[:, 0], new[:, 1], rng)
        wins += won.tolist()
        probabilities += probability.tolist()
        comparisons = Comparisons(
            n,
            np.array([p[0] for p in asked], dtype=np.int64),
            np.array([p[1] for p in asked], dtype=np.int64),
            np.array(wins, dtype=np.bool_),
            np.array(probabilities),
        )
        if len(asked) >= budget:
            return comparisons
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        more = plan_top_up(
            fit.scores, fit.standard_errors, asked, min(24, budget - len(asked)), rng=rng
        )
        if not more:
            return comparisons
        asked += more


class TestHonestOnNoise:
    """60 essays of the same quality, 20 comparisons each on the adaptive design: a coin, a judge
    whose only preference is for the essay shown first (p 0.75), one that always says A, and two
    soft judges: one answering about 0.5 on everything, one preferring the first essay (its
    probability logit 1.1 + noise of sd 1). Before the likelihood-ratio test the posterior
    reliability read 0.75 and 0.46 on two of five such batches of the hard first-preferring
    judge; scale separation and split-half read 0.8-0.9."""

    @pytest.mark.parametrize(
        "judge", [_coin, _prefers_first, _always_first, _soft_about_half, _soft_prefers_first]
    )
    def test_the_posterior_reliability_stays_near_zero_and_no_target_is_met(
        self, judge: Judge
    ) -> None:
        estimates = [posterior_reliability(_adaptive_noise(seed, judge)) for seed in range(5)]
        assert all(estimate is not None and estimate <= 0.05 for estimate in estimates), estimates
        assert not any(rule(0.5).met(estimate) for estimate in estimates)

    def test_a_modest_real_spread_is_not_mistaken_for_noise(self) -> None:
        # The test must not zero out real differences: at ability sd 0.7 (true reliability about
        # 0.6 with 20 comparisons per essay) the claim is still the empirical-Bayes one.
        claimed, achieved = [], []
        for seed in range(4):
            comparisons, theta = _random_judged(seed, 60, 20, 0.7)
            estimate = posterior_reliability(comparisons)
            assert estimate is not None
            claimed.append(estimate)
            achieved.append(_achieved(comparisons, theta))
        assert min(claimed) > 0.3
        assert abs(float(np.mean(claimed)) - float(np.mean(achieved))) < 0.1


def _adaptive_judged(seed: int, per_essay: int, spread: float) -> tuple[Comparisons, np.ndarray]:
    """An adaptive design (as the service plans it) judged by a Bradley-Terry judge with known
    abilities of sd `spread` and an order effect of 0.3 logits; the design and the abilities."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, N)

    def judge(pairs: list[tuple[int, int]]) -> list[bool]:
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        return list(rng.random(len(pairs)) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + 0.3))))

    budget = N * per_essay // 2
    asked = plan_opening_pairs(N, budget, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng)
    wins = judge(asked)
    while len(asked) < budget:
        comparisons = Comparisons.from_lists(N, [p[0] for p in asked], [p[1] for p in asked], wins)
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        more = plan_top_up(
            fit.scores, fit.standard_errors, asked, min(8, budget - len(asked)), rng=rng
        )
        if not more:
            break
        asked += more
        wins += judge(more)
    design = Comparisons.from_lists(N, [p[0] for p in asked], [p[1] for p in asked], wins)
    return design, theta


class TestAbilityVariance:
    def test_coin_flips_drive_it_towards_the_floor(self) -> None:
        variance = ability_variance(_adaptive_coin_flips(seed=3, per_essay=20))
        assert MIN_ABILITY_VARIANCE <= variance < 0.3

    def test_it_recovers_the_spread_of_an_adaptive_design(self) -> None:
        # MacKay's fixed point gave a tenth to a fifth of the variance on such designs.
        estimates = [
            ability_variance(comparisons) / float(np.var(theta, ddof=1))
            for comparisons, theta in (_adaptive_judged(seed, 12, 2.5) for seed in range(4))
        ]
        assert 0.6 < float(np.mean(estimates)) < 1.4

    def test_it_recovers_the_spread_of_a_random_design(self) -> None:
        estimates = [
            ability_variance(comparisons) / float(np.var(theta, ddof=1))
            for comparisons, theta in (_random_judged(seed, 100, 12, 1.5) for seed in range(4))
        ]
        assert 0.7 < float(np.mean(estimates)) < 1.3


def _achieved(comparisons: Comparisons, theta: np.ndarray) -> float:
    return float(np.corrcoef(fit_bradley_terry(comparisons).scores, theta)[0, 1]) ** 2


def _random_judged(
    seed: int, n: int, per_essay: int, spread: float
) -> tuple[Comparisons, np.ndarray]:
    """Random pairs judged by a Bradley-Terry judge with known abilities; design and abilities."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    m = n * per_essay // 2
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + 0.3)))
    return Comparisons(n, a.astype(np.int64), b.astype(np.int64), won), theta


def _close_judged(
    seed: int, n: int, per_essay: int, spread: float
) -> tuple[Comparisons, np.ndarray]:
    """An adaptive-like design without running the planner: a random ring (each essay twice),
    then pairs of essays within 12 places of each other on a noisy copy of the true scale (as a
    planner steering by estimates with errors of about 0.5 logits would pick them)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    ring = rng.permutation(n)
    order = np.argsort(theta + rng.normal(0.0, 0.5, n))
    place = rng.integers(0, n - 12, n * per_essay // 2 - n)
    near = place + rng.integers(1, 13, place.shape[0])
    a = np.concatenate([ring, order[place]])
    b = np.concatenate([np.roll(ring, -1), order[near]])
    flip = rng.random(a.shape[0]) < 0.5
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    won = rng.random(a.shape[0]) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + 0.3)))
    return Comparisons(n, a.astype(np.int64), b.astype(np.int64), won), theta


class TestTheFastEstimateMatchesTheExactOne:
    """Above DENSE_LOG_DET_MAX_ESSAYS the log-determinants and the posterior variances are
    stochastic estimates; the claim must stay within 0.03 of the figure computed with dense
    factorisations (measured within 0.002 on these designs, so 0.01 is asserted)."""

    @pytest.mark.parametrize(
        ("n", "design", "spread", "per_essay"),
        [
            (300, _random_judged, 2.5, 20),  # high reliability (about 0.9)
            (300, _close_judged, 1.5, 10),
            (300, _random_judged, 0.0, 10),  # coin flips (with an order effect)
            (1000, _random_judged, 1.0, 10),
            (1000, _close_judged, 2.5, 10),
            (1000, _random_judged, 0.0, 10),
            pytest.param(2000, _random_judged, 2.5, 10, marks=pytest.mark.slow),
            pytest.param(2000, _close_judged, 1.0, 10, marks=pytest.mark.slow),
        ],
    )
    def test_the_claim_agrees_with_the_exact_computation(
        self,
        monkeypatch: pytest.MonkeyPatch,
        n: int,
        design: Callable[[int, int, int, float], tuple[Comparisons, np.ndarray]],
        spread: float,
        per_essay: int,
    ) -> None:
        monkeypatch.setattr(bradley_terry, "DENSE_LOG_DET_MAX_ESSAYS", 100)  # stochastic at 300
        comparisons, _ = design(11, n, per_essay, spread)
        fast = posterior_reliability(comparisons)
        exact = posterior_reliability(comparisons, exact=True)
        assert fast is not None
        assert exact is not None
        assert abs(fast - exact) < 0.01


class TestPosteriorReliabilityProperties:
    @settings(max_examples=25, deadline=None)
    @given(
        n=st.integers(3, 12),
        seed=st.integers(0, 2**16),
        per_essay=st.integers(1, 8),
    )
    def test_it_is_a_share_and_does_not_depend_on_the_essays_order(
        self, n: int, seed: int, per_essay: int
    ) -> None:
        rng = np.random.default_rng(seed)
        m = max(1, n * per_essay // 2)
        a = rng.integers(0, n, m)
        b = (a + rng.integers(1, n, m)) % n
        won = rng.random(m) < 0.5 + 0.4 * np.tanh(a - b)
        estimate = posterior_reliability(Comparisons(n, a, b, won))
        assert estimate is not None
        assert 0.0 <= estimate <= 1.0
        relabel = rng.permutation(n)
        relabelled = posterior_reliability(Comparisons(n, relabel[a], relabel[b], won))
        assert relabelled == pytest.approx(estimate, abs=1e-3)


class TestCalibration:
    # Fixed seeds: statistical checks of the estimator, not of its speed.

    @pytest.mark.parametrize("spread", [1.5, 2.5])
    def test_the_claim_matches_the_achieved_reliability_on_a_random_design(
        self, spread: float
    ) -> None:
        # 20 per essay; at 10 the claim is low by up to 0.06 at sd 2.5 (the Laplace-approximate
        # marginal likelihood peaks below the true variance when each essay has few verdicts).
        claimed, achieved = [], []
        for seed in range(6):
            comparisons, theta = _random_judged(seed, 100, 20, spread)
            estimate = posterior_reliability(comparisons)
            assert estimate is not None
            claimed.append(estimate)
            achieved.append(_achieved(comparisons, theta))
        assert abs(float(np.mean(claimed)) - float(np.mean(achieved))) < 0.03

    @pytest.mark.parametrize(("spread", "per_essay"), [(1.5, 16), (2.5, 12)])
    def test_the_claim_is_not_above_the_achieved_reliability_on_an_adaptive_design(
        self, spread: float, per_essay: int
    ) -> None:
        # 40 essays: the marginal likelihood is flat in the ability variance (under a nat from
        # 0.1 to 2 at sd 1.5), its maximum falls low and the claim is conservative; with 100
        # essays the mean claim at the stop is within 0.04 (benchmarks/cj/stopping.py).
        claimed, achieved = [], []
        for seed in range(6):
            comparisons, theta = _adaptive_judged(seed, per_essay, spread)
            estimate = posterior_reliability(comparisons)
            assert estimate is not None
            claimed.append(estimate)
            achieved.append(_achieved(comparisons, theta))
        assert float(np.mean(achieved)) >= float(np.mean(claimed)) - 0.03


def _soft_random_judged(
    seed: int, n: int, per_essay: int, spread: float, overconfidence: float
) -> tuple[Comparisons, np.ndarray]:
    """Random pairs judged by a soft judge: its probability is the ability difference plus an
    order effect of 0.3 plus logit noise of sd 1, stretched by `overconfidence`."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    m = n * per_essay // 2
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    latent = theta[a] - theta[b] + 0.3 + rng.normal(0.0, 1.0, m)
    probability = 1.0 / (1.0 + np.exp(-overconfidence * latent))
    return Comparisons(n, a, b, probability > 0.5, probability), theta


class TestSoftCalibration:
    @pytest.mark.parametrize(
        ("spread", "overconfidence"), [(1.5, 1.0), (2.5, 1.0), (1.5, 2.0), (0.7, 1.0)]
    )
    def test_the_claim_matches_the_achieved_reliability_with_soft_verdicts(
        self, spread: float, overconfidence: float
    ) -> None:
        # 10 per essay: soft verdicts carry several hard ones' information (weight 3-10).
        claimed, achieved = [], []
        for seed in range(6):
            comparisons, theta = _soft_random_judged(seed, 100, 10, spread, overconfidence)
            estimate = posterior_reliability(comparisons)
            assert estimate is not None
            claimed.append(estimate)
            achieved.append(
                float(
                    np.corrcoef(fit_bradley_terry(weigh_soft_verdicts(comparisons)).scores, theta)[
                        0, 1
                    ]
                )
                ** 2
            )
        assert abs(float(np.mean(claimed)) - float(np.mean(achieved))) < 0.03
