"""Bradley-Terry fitting: agreement with choix, finiteness, order effect, errors, reliabilities."""

from __future__ import annotations

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.stats import spearmanr

from cj_assessment_service.domain import bradley_terry
from cj_assessment_service.domain.bradley_terry import (
    BradleyTerryFit,
    Comparisons,
    debiased_position_bias,
    fit_bradley_terry,
    laplace_evidence,
    ranks_from_scores,
    scale_separation_reliability,
    split_half_reliability,
    stochastic_log_det,
    total_posterior_variance,
)


def simulate(
    n: int, m: int, *, seed: int = 0, spread: float = 1.5, bias: float = 0.0
) -> tuple[Comparisons, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    a_won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + bias)))
    return Comparisons(n, a, b, a_won), theta


class TestAgreementWithChoix:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_map_scores_match_choix_opt_pairwise_with_the_same_prior(self, seed: int) -> None:
        comparisons, _ = simulate(30, 400, seed=seed)
        ours = fit_bradley_terry(comparisons, prior_precision=0.1, estimate_position_bias=False)
        data = [
            (int(a), int(b)) if won else (int(b), int(a))
            for a, b, won in zip(comparisons.essay_a, comparisons.essay_b, comparisons.a_won)
        ]
        # choix penalises alpha * ||theta||^2, i.e. a prior precision of 2 * alpha.
        theirs = choix.opt_pairwise(30, data, alpha=0.05, tol=1e-10)
        np.testing.assert_allclose(ours.scores, theirs - theirs.mean(), atol=1e-4)

    def test_ranking_agrees_with_choix_ilsr(self) -> None:
        comparisons, truth = simulate(200, 3000, seed=3)
        data = [
            (int(a), int(b)) if won else (int(b), int(a))
            for a, b, won in zip(comparisons.essay_a, comparisons.essay_b, comparisons.a_won)
        ]
        ours = fit_bradley_terry(comparisons, estimate_position_bias=False).scores
        theirs = choix.ilsr_pairwise(200, data, alpha=0.01)
        assert spearmanr(ours, theirs)[0] > 0.99
        assert spearmanr(ours, truth)[0] >= spearmanr(theirs, truth)[0] - 0.01


class TestFit:
    def test_a_perfect_record_stays_finite(self) -> None:
        comparisons = Comparisons.from_lists(3, [0, 0, 1], [1, 2, 2], [True, True, True])
        fit = fit_bradley_terry(comparisons)
        assert np.all(np.isfinite(fit.scores))
        assert fit.standard_errors is not None
        assert np.all(np.isfinite(fit.standard_errors))
        assert list(ranks_from_scores(fit.scores)) == [1, 2, 3]

    def test_scores_are_centred_on_zero(self) -> None:
        comparisons, _ = simulate(20, 200)
        assert abs(fit_bradley_terry(comparisons).scores.mean()) < 1e-9

    def test_position_bias_is_recovered(self) -> None:
        comparisons, truth = simulate(100, 6000, seed=4, bias=0.8)
        fit = fit_bradley_terry(comparisons)
        assert fit.position_bias == pytest.approx(0.8, abs=0.15)
        assert spearmanr(fit.scores, truth)[0] > 0.9

    def test_no_bias_is_estimated_near_zero(self) -> None:
        comparisons, _ = simulate(100, 6000, seed=5, bias=0.0)
        assert abs(fit_bradley_terry(comparisons).position_bias) < 0.1

    def test_more_comparisons_give_smaller_standard_errors(self) -> None:
        few, _ = simulate(40, 200, seed=6)
        many, _ = simulate(40, 2000, seed=6)
        few_se = fit_bradley_terry(few).standard_errors
        many_se = fit_bradley_terry(many).standard_errors
        assert few_se is not None
        assert many_se is not None
        assert many_se.mean() < few_se.mean() / 2

    def test_large_batch_errors_approximate_the_exact_ones(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        comparisons, _ = simulate(150, 1500, seed=7)
        exact = fit_bradley_terry(comparisons).standard_errors
        monkeypatch.setattr(bradley_terry, "EXACT_SE_MAX_ESSAYS", 10)
        approximate = fit_bradley_terry(comparisons).standard_errors
        assert exact is not None
        assert approximate is not None
        np.testing.assert_allclose(approximate, exact, rtol=0.05)

    @pytest.mark.parametrize("n", [40, 600])  # dense and conjugate-gradient Newton steps
    def test_a_warm_start_reaches_the_same_fit_in_fewer_steps(self, n: int) -> None:
        comparisons, _ = simulate(n, 10 * n, seed=16)
        cold = fit_bradley_terry(comparisons, prior_precision=0.3)
        near = fit_bradley_terry(comparisons, prior_precision=0.4)
        warm = fit_bradley_terry(comparisons, prior_precision=0.3, initial=near)
        np.testing.assert_allclose(warm.scores, cold.scores, atol=1e-6)
        assert warm.position_bias == pytest.approx(cold.position_bias, abs=1e-6)
        assert warm.iterations < cold.iterations

    def test_a_start_far_from_the_optimum_still_converges(self) -> None:
        # A full Newton step from abilities ten times too spread out overshoots; halving it
        # until the log posterior does not fall keeps Newton on course.
        comparisons, _ = simulate(40, 400, seed=17)
        cold = fit_bradley_terry(comparisons)
        far = BradleyTerryFit(10.0 * cold.scores, None, -5.0, 0)
        warm = fit_bradley_terry(comparisons, initial=far)
        np.testing.assert_allclose(warm.scores, cold.scores, atol=1e-6)
        assert warm.position_bias == pytest.approx(cold.position_bias, abs=1e-6)

    def test_a_start_with_another_number_of_essays_is_refused(self) -> None:
        comparisons, _ = simulate(10, 40, seed=18)
        with pytest.raises(ValueError, match="essays"):
            fit_bradley_terry(comparisons, initial=BradleyTerryFit(np.zeros(9), None, 0.0, 0))

    def test_no_comparisons_give_zero_scores(self) -> None:
        fit = fit_bradley_terry(Comparisons.from_lists(4, [], [], []))
        assert list(fit.scores) == [0.0] * 4

    @settings(max_examples=40, deadline=None)
    @given(
        n=st.integers(min_value=2, max_value=25),
        m=st.integers(min_value=0, max_value=120),
        seed=st.integers(min_value=0, max_value=10_000),
    )
    def test_ranks_are_a_permutation_and_scores_finite(self, n: int, m: int, seed: int) -> None:
        comparisons, _ = simulate(n, m, seed=seed)
        fit = fit_bradley_terry(comparisons)
        assert np.all(np.isfinite(fit.scores))
        assert sorted(ranks_from_scores(fit.scores)) == list(range(1, n + 1))


def balanced(
    n: int, m: int, *, seed: int, spread: float = 1.5, bias: float = 0.0
) -> tuple[Comparisons, np.ndarray]:
    """Random distinct pairs, each essay shown first in about half of its comparisons."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    first, second = np.triu_indices(n, k=1)
    chosen = rng.choice(first.shape[0], size=m, replace=False)
    flip = rng.random(m) < 0.5
    a = np.where(flip, second[chosen], first[chosen]).astype(np.int64)
    b = np.where(flip, first[chosen], second[chosen]).astype(np.int64)
    a_won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + bias)))
    return Comparisons(n, a, b, a_won), theta


class TestPositionBiasUncertainty:
    def test_the_standard_error_is_positive_and_shrinks_with_more_comparisons(self) -> None:
        few, _ = balanced(60, 300, seed=11, bias=0.4)
        many, _ = balanced(60, 1500, seed=11, bias=0.4)
        few_se = fit_bradley_terry(few).position_bias_standard_error
        many_se = fit_bradley_terry(many).position_bias_standard_error
        assert few_se is not None
        assert many_se is not None
        assert 0.0 < many_se < few_se
        # Information grows with the number of comparisons: 5x the data, about 1/sqrt(5) the SE.
        assert many_se < few_se / 1.8

    def test_the_standard_error_matches_the_inverse_information_of_the_constrained_fit(
        self,
    ) -> None:
        comparisons, _ = balanced(30, 200, seed=12, bias=0.5)
        fit = fit_bradley_terry(comparisons)
        # The same fit parametrised with abilities summing to zero: theta = P beta, P an
        # orthonormal basis of the sum-zero subspace, bias appended.
        n = comparisons.n_essays
        basis = np.linalg.svd(np.eye(n) - 1.0 / n)[0][:, : n - 1]
        x = np.zeros((len(comparisons), n + 1))
        x[np.arange(len(comparisons)), comparisons.essay_a] += 1.0
        x[np.arange(len(comparisons)), comparisons.essay_b] -= 1.0
        x[:, n] = 1.0
        prob = 1.0 / (1.0 + np.exp(-(x[:, :n] @ fit.scores + fit.position_bias)))
        reduced = np.column_stack([x[:, :n] @ basis, x[:, n]])
        information = reduced.T @ ((prob * (1.0 - prob))[:, None] * reduced)
        information[np.diag_indices(n)] += np.append(
            np.full(n - 1, bradley_terry.DEFAULT_PRIOR_PRECISION),
            bradley_terry.DEFAULT_BIAS_PRIOR_PRECISION,
        )
        expected = float(np.sqrt(np.linalg.inv(information)[n - 1, n - 1]))
        assert fit.position_bias_standard_error == pytest.approx(expected, rel=1e-6)

    def test_large_batches_compute_the_same_standard_error_without_the_dense_inverse(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        comparisons, _ = balanced(80, 600, seed=13, bias=0.3)
        exact = fit_bradley_terry(comparisons).position_bias_standard_error
        monkeypatch.setattr(bradley_terry, "EXACT_SE_MAX_ESSAYS", 10)
        by_cg = fit_bradley_terry(comparisons).position_bias_standard_error
        assert exact is not None
        assert by_cg == pytest.approx(exact, rel=1e-5)

    def test_no_standard_error_without_an_order_effect(self) -> None:
        comparisons, _ = balanced(10, 30, seed=14)
        fit = fit_bradley_terry(comparisons, estimate_position_bias=False)
        assert fit.position_bias_standard_error is None
        assert debiased_position_bias(comparisons, fit).standard_error is None

    @pytest.mark.parametrize("truth", [0.0, 0.6])
    def test_a_known_bias_is_recovered_within_three_standard_errors(self, truth: float) -> None:
        comparisons, _ = balanced(300, 6000, seed=15, bias=truth)
        fit = fit_bradley_terry(comparisons)
        estimate = debiased_position_bias(comparisons, fit)
        assert estimate.standard_error is not None
        assert 0.0 < estimate.standard_error < 0.05
        assert abs(estimate.logit - truth) < 3.0 * estimate.standard_error

    def test_the_bias_correction_moves_an_inflated_estimate_towards_the_truth(self) -> None:
        # Ten comparisons per essay over many batches: the joint MAP is pulled away from 0,
        # the corrected estimate is not (mean over 48 batches, tolerance from their spread).
        truth = 0.6
        raw, corrected = [], []
        for seed in range(48):
            comparisons, _ = balanced(60, 300, seed=100 + seed, bias=truth)
            fit = fit_bradley_terry(comparisons)
            raw.append(fit.position_bias)
            corrected.append(debiased_position_bias(comparisons, fit, replicates=8).logit)
        standard_error_of_mean = float(np.std(corrected, ddof=1)) / np.sqrt(len(corrected))
        assert abs(float(np.mean(corrected)) - truth) < 3.0 * standard_error_of_mean
        assert abs(float(np.mean(corrected)) - truth) < abs(float(np.mean(raw)) - truth)


class TestReliability:
    def test_scale_separation_reliability_is_high_with_plenty_of_data(self) -> None:
        comparisons, _ = simulate(30, 3000, seed=8)
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        value = scale_separation_reliability(fit.scores, fit.standard_errors)
        assert value is not None
        assert value > 0.9

    def test_scale_separation_reliability_is_low_for_noise(self) -> None:
        comparisons, _ = simulate(30, 60, seed=9, spread=0.0)
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        value = scale_separation_reliability(fit.scores, fit.standard_errors)
        assert value is None or value < 0.3

    def test_split_half_reliability_tracks_signal(self) -> None:
        strong, _ = simulate(30, 3000, seed=10)
        noise, _ = simulate(30, 3000, seed=10, spread=0.0)
        high = split_half_reliability(strong)
        low = split_half_reliability(noise)
        assert high is not None
        assert high > 0.9
        assert low is not None
        assert low < 0.5

    def test_reliabilities_need_enough_data(self) -> None:
        comparisons = Comparisons.from_lists(2, [0], [1], [True])
        assert split_half_reliability(comparisons) is None
        assert scale_separation_reliability(np.array([0.5, -0.5]), np.array([1.0, 1.0])) is None


class TestStochasticLinearAlgebra:
    """The estimates used above DENSE_LOG_DET_MAX_ESSAYS against dense factorisations."""

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_the_log_determinant_and_its_change_with_the_prior(self, seed: int) -> None:
        comparisons, _ = balanced(600, 3000, seed=seed, bias=0.3)
        estimates = []
        for precision in (0.2, 0.25):
            evidence = laplace_evidence(comparisons, prior_precision=precision, exact=True)
            dense = float(np.linalg.slogdet(evidence.information.toarray())[1])
            stochastic = stochastic_log_det(evidence.information, 600, precision)
            # About 0.1 % of |log det| at most; measured within 0.4 nats on these designs.
            assert stochastic == pytest.approx(dense, abs=1.5)
            estimates.append((stochastic, dense))
        # The same probes at every prior: the error barely moves between nearby priors, so the
        # search on the prior sees the true differences.
        (first, first_dense), (second, second_dense) = estimates
        assert second - first == pytest.approx(second_dense - first_dense, abs=0.1)

    @pytest.mark.parametrize("seed", [0, 1, 2])
    def test_the_total_posterior_variance(self, seed: int) -> None:
        comparisons, _ = balanced(600, 3000, seed=seed, spread=2.5, bias=0.3)
        evidence = laplace_evidence(comparisons, prior_precision=0.2, exact=True)
        exact = total_posterior_variance(evidence, exact=True)
        assert bradley_terry.DENSE_LOG_DET_MAX_ESSAYS < 600
        # Measured within 1.8 % on random and adaptive-like designs of 600 essays (less on larger
        # batches: the sum grows with n, its Monte Carlo error with the square root of n).
        assert total_posterior_variance(evidence) == pytest.approx(exact, rel=0.03)

    def test_an_exhausted_krylov_space_gives_the_exact_log_determinant(self) -> None:
        # No comparisons: the information is the prior's diagonal, every probe is an
        # eigenvector of the scaled matrix and Lanczos stops after one step.
        information = sparse.diags(np.append(np.full(700, 0.3), 0.01)).tocsr()
        expected = 700 * np.log(0.3) + np.log(0.01)
        assert stochastic_log_det(information, 700, 0.3) == pytest.approx(expected, abs=1e-9)


def soft_judged(
    seed: int, n: int, m: int, *, spread: float, overconfidence: float = 1.0
) -> tuple[Comparisons, np.ndarray]:
    """A judge whose probability is the ability difference plus the order effect (0.3) plus
    logit noise of sd 1, stretched by `overconfidence`; its hard verdict is q > 1/2."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    latent = theta[a] - theta[b] + 0.3 + rng.normal(0.0, 1.0, m)
    probability = 1.0 / (1.0 + np.exp(-overconfidence * latent))
    return Comparisons(n, a, b, probability > 0.5, probability), theta


class TestSoftVerdicts:
    def test_hard_verdicts_give_exactly_the_results_of_before(self) -> None:
        hard, _ = simulate(30, 200, seed=4, bias=0.4)
        unmarked = Comparisons(
            hard.n_essays, hard.essay_a, hard.essay_b, hard.a_won, np.full(len(hard), np.nan)
        )
        assert bradley_terry.weigh_soft_verdicts(unmarked).weights().tolist() == [1.0] * 200
        for fit_of in (
            fit_bradley_terry,
            lambda c: fit_bradley_terry(c, bias_prior_precision=0.01),
        ):
            before, after = fit_of(hard), fit_of(bradley_terry.weigh_soft_verdicts(unmarked))
            assert np.array_equal(before.scores, after.scores)
            assert before.standard_errors is not None
            assert after.standard_errors is not None
            assert np.array_equal(before.standard_errors, after.standard_errors)
            assert before.position_bias == after.position_bias
        evidence = laplace_evidence(hard, prior_precision=0.5).log_evidence
        assert laplace_evidence(unmarked, prior_precision=0.5).log_evidence == evidence

    def test_a_certain_probability_counts_as_the_hard_verdict_at_weight_one(self) -> None:
        hard, _ = simulate(20, 150, seed=2)
        certain = Comparisons(
            hard.n_essays,
            hard.essay_a,
            hard.essay_b,
            hard.a_won,
            hard.a_won.astype(np.float64),
            soft_weight=1.0,
        )
        assert np.allclose(fit_bradley_terry(certain).scores, fit_bradley_terry(hard).scores)

    def test_a_verdict_of_p_counts_p_for_the_first_essay_and_1_minus_p_for_the_second(
        self,
    ) -> None:
        # Essay 0 shown first against 1, ten times at 0.8: without an order effect the fit
        # puts the difference where a sigmoid gives 0.8 (weak prior: logit(0.8) = 1.386).
        n = 2
        comparisons = Comparisons(
            n,
            np.zeros(10, np.int64),
            np.ones(10, np.int64),
            np.ones(10, np.bool_),
            np.full(10, 0.8),
        )
        fit = fit_bradley_terry(comparisons, estimate_position_bias=False, prior_precision=1e-6)
        assert fit.scores[0] - fit.scores[1] == pytest.approx(np.log(4.0), abs=1e-4)

    @pytest.mark.parametrize("overconfidence", [1.0, 2.0])
    def test_the_soft_weight_follows_the_scatter_of_the_probabilities(
        self, overconfidence: float
    ) -> None:
        # Sharper than coin tosses: weight above 1; stretching the same judge's probabilities
        # makes them scatter more around the fit, and the weight drops.
        weights = [
            bradley_terry.weigh_soft_verdicts(
                soft_judged(seed, 100, 1000, spread=1.5, overconfidence=overconfidence)[0]
            ).soft_weight
            for seed in range(3)
        ]
        assert all(w is not None and w > 1.0 for w in weights)
        if overconfidence > 1.0:
            assert all(w is not None and w < 5.0 for w in weights)

    def test_soft_standard_errors_match_the_scatter_of_the_scores(self) -> None:
        # The weighted information is honest: over replicate batches of the same essays, the
        # scores scatter as much as their standard errors say (within 15 %).
        n, m = 40, 400
        scores, errors = [], []
        for seed in range(40):
            comparisons, _ = soft_judged(seed, n, m, spread=0.0)
            fit = fit_bradley_terry(bradley_terry.weigh_soft_verdicts(comparisons))
            assert fit.standard_errors is not None
            scores.append(fit.scores)
            errors.append(fit.standard_errors)
        scatter = float(np.mean(np.var(np.array(scores), axis=0)))
        claimed = float(np.mean(np.array(errors) ** 2))
        assert 0.85 < scatter / claimed < 1.15


class TestPositionGroups:
    """An order effect per group of verdicts (per kind of judge, domain/judge_fit.py)."""

    @staticmethod
    def _two_groups(n: int, m: int, seed: int) -> tuple[Comparisons, np.ndarray]:
        rng = np.random.default_rng(seed)
        theta = rng.normal(0.0, 1.0, n)
        a = rng.integers(0, n, m)
        b = (a + rng.integers(1, n, m)) % n
        group = (rng.random(m) < 0.5).astype(np.int64)
        bias = np.where(group == 1, -0.4, 0.6)
        won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + bias)))
        return Comparisons(n, a, b, won, position_group=group), theta

    def test_one_group_gives_the_fit_without_groups(self) -> None:
        comparisons, _ = simulate(30, 400, seed=5, bias=0.3)
        grouped = Comparisons(
            30,
            comparisons.essay_a,
            comparisons.essay_b,
            comparisons.a_won,
            position_group=np.zeros(400, dtype=np.int64),
        )
        plain, fit = fit_bradley_terry(comparisons), fit_bradley_terry(grouped)
        assert plain.standard_errors is not None
        assert fit.standard_errors is not None
        assert np.allclose(fit.scores, plain.scores, atol=1e-10)
        assert np.allclose(fit.standard_errors, plain.standard_errors, atol=1e-10)
        assert fit.position_biases is not None
        assert np.allclose(fit.position_biases, [plain.position_bias], atol=1e-10)

    @pytest.mark.parametrize(("n", "m"), [(30, 6000), (350, 14_000)])
    def test_each_group_recovers_its_own_order_effect(self, n: int, m: int) -> None:
        # 30 essays: dense Newton steps; 350: conjugate gradients on the sparse design.
        comparisons, theta = self._two_groups(n, m, seed=6)
        fit = fit_bradley_terry(comparisons, with_standard_errors=False)
        assert fit.position_biases is not None
        assert abs(fit.position_biases[0] - 0.6) < 0.1
        assert abs(fit.position_biases[1] + 0.4) < 0.1
        assert fit.position_bias == fit.position_biases[0]
        assert float(spearmanr(fit.scores, theta)[0]) > 0.9

    def test_win_probabilities_use_each_verdicts_group(self) -> None:
        comparisons, _ = self._two_groups(30, 2000, seed=7)
        fit = fit_bradley_terry(comparisons, with_standard_errors=False)
        assert fit.position_biases is not None
        gap = fit.scores[comparisons.essay_a] - fit.scores[comparisons.essay_b]
        assert comparisons.position_group is not None
        expected = 1.0 / (1.0 + np.exp(-(gap + fit.position_biases[comparisons.position_group])))
        assert np.allclose(fit.win_probability(comparisons), expected)
        subset = comparisons.subset(comparisons.position_group == 1)
        assert subset.position_group is not None
        assert subset.position_group.all()

    def test_the_laplace_evidence_takes_grouped_verdicts(self) -> None:
        comparisons, _ = self._two_groups(30, 600, seed=8)
        evidence = laplace_evidence(comparisons, prior_precision=0.5)
        assert evidence.information.shape == (32, 32)
        assert np.isfinite(evidence.log_evidence)
