"""The reliability stop rule: when it may check, when it is met, and that its estimate is not
fooled by coin-flip judgements on an adaptive design (scale separation and split-half are)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.batch import plan_opening_pairs, plan_top_up
from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    scale_separation_reliability,
    split_half_reliability,
)
from cj_assessment_service.domain.stopping import StopRule, posterior_reliability

N = 40


def rule(target: float | None = 0.8) -> StopRule:
    return StopRule(target_reliability=target, min_comparisons_per_essay=6, check_every=10)


class TestWhenTheRuleChecks:
    def test_no_target_never_checks(self) -> None:
        assert not rule(None).check_due(n_essays=N, answered_before=0, answered_now=400)

    def test_no_check_below_the_minimum_per_essay(self) -> None:
        assert not rule().check_due(n_essays=N, answered_before=100, answered_now=119)

    def test_the_first_check_comes_when_the_minimum_is_reached(self) -> None:
        assert rule().check_due(n_essays=N, answered_before=119, answered_now=120)

    def test_later_checks_come_every_check_every_answers(self) -> None:
        assert not rule().check_due(n_essays=N, answered_before=121, answered_now=129)
        assert rule().check_due(n_essays=N, answered_before=129, answered_now=130)

    @given(before=st.integers(0, 2000), step=st.integers(0, 500))
    def test_a_batch_of_answers_crossing_a_multiple_is_due(self, before: int, step: int) -> None:
        now = before + step
        crossed = now // 10 > before // 10 and 2 * now / N >= 6
        if crossed:
            assert rule().check_due(n_essays=N, answered_before=before, answered_now=now)

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
