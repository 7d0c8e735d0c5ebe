"""Human and AI judges in one fit: order effect per kind, judge misfit, AI-human agreement."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cj_assessment_service.domain.bradley_terry import BradleyTerryFit, Comparisons
from cj_assessment_service.domain.judge_fit import (
    ai_human_agreement,
    calibrate_kind,
    fit_human_and_ai,
    judge_misfit,
    wilson_interval,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def _panel(
    seed: int, verdicts_per_teacher: int
) -> tuple[Comparisons, np.ndarray, list[str], np.ndarray]:
    """40 essays judged 1,600 times by the AI (order effect 0.5) and by four teachers at 0.6x
    the AI's logit (order effect -0.3); teacher-4 tosses a coin. Random pairs."""
    rng = np.random.default_rng(seed)
    n, ai_count = 40, 1600
    theta = rng.normal(0.0, 1.5, n)
    count = ai_count + 4 * verdicts_per_teacher
    a = rng.integers(0, n, count)
    b = (a + rng.integers(1, n, count)) % n
    human = np.arange(count) >= ai_count
    judges = ["ai"] * ai_count + [f"teacher-{k % 4 + 1}" for k in range(4 * verdicts_per_teacher)]
    gap = theta[a] - theta[b]
    p = np.where(human, _sigmoid(0.6 * gap - 0.3), _sigmoid(gap + 0.5))
    p[np.asarray(judges) == "teacher-4"] = 0.5
    return Comparisons(n, a, b, rng.random(count) < p), human, judges, theta


class TestOneFit:
    def test_each_kind_of_judge_gets_its_own_order_effect(self) -> None:
        comparisons, human, _, theta = _panel(0, 400)
        fit = fit_human_and_ai(comparisons, human)
        assert fit.position_biases is not None
        ai_bias, human_bias = fit.position_biases
        assert abs(ai_bias - 0.5) < 0.15
        # The teachers' -0.3 on their own (flatter) logit; the joint scale is the AI's.
        assert -0.6 < human_bias < 0.0
        assert np.corrcoef(fit.scores, theta)[0, 1] > 0.9

    def test_without_human_verdicts_the_human_order_effect_is_zero(self) -> None:
        comparisons, human, _, _ = _panel(1, 0)
        fit = fit_human_and_ai(comparisons, human)
        assert fit.position_biases is not None
        assert fit.position_biases[1] == 0.0
        assert fit.position_biases[0] == fit.position_bias


class TestMisfit:
    def test_hand_computed_infit_and_outfit(self) -> None:
        # Essay 0 is ln 3 logits above essay 1. Each judge (too few peers: measured against
        # itself) picks essay 0 on 3 of its 4 verdicts, so its calibration puts p at 3/4
        # (v = 0.1875): residuals 0.25 three times and -0.75 once, r^2 summing to 0.75 over a
        # variance of 0.75: infit = outfit = 1 (up to the calibration's weak prior).
        fit = BradleyTerryFit(np.array([math.log(3.0) / 2, -math.log(3.0) / 2]), None, 0.0, 0)
        picks = [True, True, True, False]
        comparisons = Comparisons.from_lists(2, [0] * 8, [1] * 8, picks + picks)
        steady, twin = judge_misfit(comparisons, fit, ["steady"] * 4 + ["twin"] * 4)
        assert (steady.judge, steady.judgements) == ("steady", 4)
        assert math.isclose(steady.infit, 1.0, rel_tol=0.02)
        assert math.isclose(steady.outfit, 1.0, rel_tol=0.02)
        assert math.isclose(twin.infit, steady.infit)
        assert not steady.flagged

    def test_a_soft_verdict_misfits_by_its_decision_not_its_stated_certainty(self) -> None:
        # The same decisions stated softly (what the fit is made of) misfit exactly as hard ones.
        fit = BradleyTerryFit(np.array([math.log(3.0) / 2, -math.log(3.0) / 2]), None, 0.0, 0)
        hard = Comparisons.from_lists(2, [0] * 4, [1] * 4, [True, True, True, False])
        soft = Comparisons.from_lists(
            2, [0] * 4, [1] * 4, [True, True, True, False], [0.9, 0.6, 1.0, 0.4]
        )
        (by_decision,) = judge_misfit(hard, fit, ["ai"] * 4)
        (stated,) = judge_misfit(soft, fit, ["ai"] * 4)
        assert math.isclose(stated.infit, by_decision.infit)
        assert math.isclose(stated.outfit, by_decision.outfit)

    def test_infit_weighs_by_information_and_outfit_does_not(self) -> None:
        comparisons, human, judges, _ = _panel(2, 60)
        fit = fit_human_and_ai(comparisons, human)
        by_judge = {m.judge: m for m in judge_misfit(comparisons, fit, judges, human)}
        mine = np.asarray(judges) == "teacher-1"
        gap = fit.scores[comparisons.essay_a] - fit.scores[comparisons.essay_b]
        peers = human & ~mine  # the other teachers calibrate the human scale for teacher-1
        slope, offset = calibrate_kind(
            gap[peers], comparisons.outcomes()[peers], np.ones(int(peers.sum()))
        )
        p = _sigmoid(slope * gap[mine] + offset)
        residual = comparisons.outcomes()[mine] - p
        variance = p * (1.0 - p)
        assert math.isclose(by_judge["teacher-1"].infit, np.sum(residual**2) / np.sum(variance))
        assert math.isclose(by_judge["teacher-1"].outfit, np.mean(residual**2 / variance))
        assert by_judge["teacher-1"].judgements == 60

    def test_the_erratic_teacher_is_flagged_and_the_honest_ones_are_not(self) -> None:
        comparisons, human, judges, _ = _panel(3, 150)
        fit = fit_human_and_ai(comparisons, human)
        misfit = judge_misfit(comparisons, fit, judges, human)
        assert {m.judge for m in misfit if m.flagged} == {"teacher-4"}
        honest = [m.infit for m in misfit if m.judge in ("teacher-1", "teacher-2", "teacher-3")]
        assert all(0.7 < infit < 1.3 for infit in honest)

    @settings(max_examples=30, deadline=None)
    @given(st.integers(0, 10_000), st.integers(2, 6), st.integers(1, 40))
    def test_every_verdict_counts_once_and_the_statistics_are_finite(
        self, seed: int, judge_count: int, per_judge: int
    ) -> None:
        rng = np.random.default_rng(seed)
        m = judge_count * per_judge
        a = rng.integers(0, 8, m)
        b = (a + rng.integers(1, 8, m)) % 8
        comparisons = Comparisons(8, a, b, rng.random(m) < 0.6)
        judges = [f"j{k % judge_count}" for k in range(m)]
        human = np.array([k % judge_count > 0 for k in range(m)])
        fit = fit_human_and_ai(comparisons, human)
        misfit = judge_misfit(comparisons, fit, judges, human)
        assert [j.judge for j in misfit] == sorted(set(judges))
        assert sum(j.judgements for j in misfit) == m
        for judge in misfit:
            assert math.isfinite(judge.infit)
            assert math.isfinite(judge.outfit)
            assert math.isfinite(judge.infit_z)
            assert judge.infit >= 0.0
            assert judge.outfit >= 0.0

    def test_a_kind_calibration_recovers_a_flatter_judge(self) -> None:
        rng = np.random.default_rng(4)
        gap = rng.normal(0.0, 2.0, 20_000)
        won = (rng.random(gap.shape[0]) < _sigmoid(0.6 * gap + 0.1)).astype(np.float64)
        slope, offset = calibrate_kind(gap, won, np.ones_like(gap))
        assert abs(slope - 0.6) < 0.03
        assert abs(offset - 0.1) < 0.05


class TestAgreement:
    @staticmethod
    def _batch() -> tuple[Comparisons, np.ndarray, list[str]]:
        # The AI orders 0 > 1 > 2 (each pair won 3 to 1 both ways round); the teacher agrees
        # on 0 over 1 and 1 over 2 and picks 2 over 0.
        ai_a = [0, 0, 1, 1, 1, 1, 2, 2, 0, 2]
        ai_b = [1, 1, 0, 0, 2, 2, 1, 1, 2, 0]
        ai_won = [True, True, False, True, True, True, False, True, True, False]
        comparisons = Comparisons.from_lists(
            3, [*ai_a, 0, 1, 0], [*ai_b, 1, 2, 2], [*ai_won, True, True, False]
        )
        human = np.array([False] * 10 + [True] * 3)
        return comparisons, human, ["ai"] * 10 + ["teacher"] * 3

    def test_the_share_of_human_decisions_the_ai_order_agrees_with(self) -> None:
        comparisons, human, judges = self._batch()
        report = ai_human_agreement(comparisons, human, judges, disagreements=1)
        assert report is not None
        assert report.decisions == 3
        assert math.isclose(report.agreement, 2.0 / 3.0)
        assert (report.low, report.high) == wilson_interval(2, 3, 0.95)
        (worst,) = report.largest_disagreements
        assert (worst.chosen, worst.other, worst.judge) == (2, 0, "teacher")
        assert worst.ai_probability < 0.5

    def test_no_report_without_human_or_without_ai_verdicts(self) -> None:
        comparisons, _, judges = self._batch()
        assert ai_human_agreement(comparisons, np.zeros(13, dtype=np.bool_), judges) is None
        assert ai_human_agreement(comparisons, np.ones(13, dtype=np.bool_), judges) is None

    def test_wilson_interval_hand_values(self) -> None:
        low, high = wilson_interval(0, 10, 0.95)
        z2 = 1.959963984540054**2
        assert low == 0.0
        assert math.isclose(high, z2 / (10 + z2))
        low, high = wilson_interval(8, 10, 0.95)
        assert math.isclose(low, 0.4901624, abs_tol=1e-6)
        assert math.isclose(high, 0.9433178, abs_tol=1e-6)

    @settings(max_examples=60, deadline=None)
    @given(
        st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, 2 * n), st.just(n))),
        st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    )
    def test_the_interval_holds_the_share_and_stays_in_0_1(
        self, counts: tuple[int, int], confidence: float
    ) -> None:
        doubled, trials = counts
        successes = doubled / 2.0  # ties count half
        low, high = wilson_interval(successes, trials, confidence)
        assert 0.0 <= low <= successes / trials <= high <= 1.0
        wider = wilson_interval(successes, trials, min(0.999, confidence + 0.009))
        assert wider[0] <= low + 1e-12
        assert high <= wider[1] + 1e-12
