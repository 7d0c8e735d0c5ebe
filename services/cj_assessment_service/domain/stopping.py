"""The reliability stop rule: finish a batch once its ranking is reliable enough.

The figure it stops on is the posterior reliability: the posterior expectation of the squared
correlation of the fitted scores with the true abilities, under an empirical-Bayes Bradley-Terry
model whose abilities have a Gaussian prior N(0, tau^2). With mu the posterior means and v their
variances (centred), E[corr^2(mu, theta) | data] is about sum(mu^2) / (sum(mu^2) + sum(v)): the
expected covariance of mu with theta is the spread of mu, and the spread of theta adds the
posterior variances (a ratio of expectations; n is at least tens of essays).

tau^2 is estimated by type-II maximum likelihood: the value that maximises the Laplace
approximation of the marginal likelihood of the comparisons (`laplace_log_evidence`), found by a
bounded scalar search on log tau^2. Before, MacKay's fixed point (tau^2 = sum(mu^2) / gamma) was
used; it drops how the weights p(1-p) at the MAP move with tau^2, and on adaptive designs (close
pairs: p near 1/2 whatever the spread) that term dominates, so the fixed point collapsed to a
fraction of the true variance (0.5-1 where the abilities had variance 6, at 8 comparisons per
essay) and the figure erred low by about 0.1. Type-II ML lands near the truth once each essay
has a dozen or so verdicts: in `benchmarks/cj/stopping.py` (100 essays) the mean claim at the
stop is within 0.01 of the mean achieved reliability at sd 1.5 and errs low by 0.01-0.04 at sd
2.5. With fewer verdicts per essay the marginal likelihood is flat in tau^2 and peaks low, so the
figure errs low (by up to 0.02 at sd 2.5 and 0.07 at sd 1.5 at a fixed spend of 10-16 per essay).

Why likelihood-based: which pair is asked next depends only on answers already seen, so the
likelihood, and with it the marginal likelihood and the posterior, is the same as for a fixed
design (the design is ignorable), and a posterior expectation stays calibrated whatever the rule
that decides when to look. Statistics that are not likelihood-based are not protected: scale
separation reliability takes the spread of weakly shrunk scores as signal, and adaptive pairing
(winners meet winners) spreads them out (Bramley 2015: coin-flip judgements reached 0.89);
split-half reliability fits both halves on one adaptively chosen network of opponents, which
carries the same spread into both (0.81 on coin flips, see tests/unit/domain/test_stopping.py).
On coin flips the marginal likelihood prefers a small tau^2 and the figure stays low.

Honest on noise. Where the essays do not differ at all (true reliability 0), tau^2 is estimated
on the boundary of its range, and half the time it lands above it by chance; the plug-in ratio is
steep there (tau^2 / (tau^2 + error variance)), so a sampling fluke of tau^2 read as a figure of
0.3-0.5 (60 essays, 20 comparisons each, a judge that only prefers the essay shown first or tosses
a coin: 4 to 7 of 40 such batches above 0.3, one 0.49). So the figure is only computed where the
comparisons show that the essays differ: a likelihood-ratio test of tau^2 at the floor of the
search (MIN_ABILITY_VARIANCE, "no differences") against the type-II ML tau^2, on the two Laplace
evidences, at level SPREAD_TEST_LEVEL (twice the log evidence ratio follows 1/2 chi2_0 + 1/2
chi2_1 on the boundary). Where the test does not reject, the figure is 0: the posterior at
tau^2 = 0 puts every essay at the same ability. On noise the figure is 0 except in about one
batch in a hundred (on 80 adaptive noise batches of 60 essays the largest ratio was 2.5 nats;
on 32 of 100 essays every claim was 0 where the plug-in figure reached 0.80). The price is power
on adaptive designs: close pairs say little about the spread itself, so the marginal likelihood
can be nearly as high with no spread as with the true one even where the ranking is good (2 to
16 nats at ability sd 1.5, 100 essays, 8-20 comparisons per essay). On random designs, and at sd
2.5, the stop figures are unchanged; at sd 1.5 (benchmarks/cj/stopping.py, target 0.8) 27 instead
of 29 of 32 batches stopped, at 74 % instead of 71 % of the budget, and the mean claim at the
stop (0 for the batches whose test did not reject at the budget) fell to 0.757 against 0.814
achieved (0.807 against 0.810 before): conservative, not calibrated, for those batches.

How it is computed. Each evaluation of the search is a MAP fit (Newton, started from the fit at
the nearest tau^2 tried so far: two or three steps instead of seven) and log|H|, H the
(n+1) x (n+1) posterior information (abilities and the order effect). Up to
DENSE_LOG_DET_MAX_ESSAYS essays log|H| and the noise term sum(v) = tr(C H^-1 C) (C centres the
abilities) are dense factorisations, cubic in n. Above, both are stochastic Lanczos quadrature
estimates (`bradley_terry.stochastic_log_det`, `total_posterior_variance`): tr f(A) is the mean
of z^T f(A) z over Rademacher probes z (Hutchinson), each quadratic form the Gauss rule of a
few Lanczos steps from z. To make that cheap and precise, H's known isolated eigenvalue (the
all-ones ability direction, eigenvalue 1/tau^2) is lifted to the mean diagonal and the matrix
scaled to unit diagonal, M = I + E: its spectrum then lies within about [0.03, 5], so 15 steps
converge; the exactly computable terms z^T E z and |Ez|^2 / 2 of z^T log(I + E) z serve as a
control variate. A step is one sparse product with the block of 16 probes, so the cost is linear
in the comparisons. The probes are fixed (seeded), so the estimated evidence is a smooth
function of tau^2 (common random numbers) and the search behaves as on the exact one. Against
the dense computation (`exact=True`) the claim agrees within 0.002 on random, adaptive (the
service's planner, and close pairs on a noisy scale) and coin-flip designs of 300 to 2,000 essays
(tests/unit/domain/test_stopping.py; benchmarks/cj/scaling.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import chdtri

from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    LaplaceEvidence,
    laplace_evidence,
    total_posterior_variance,
    weigh_soft_verdicts,
)

# The statistics field the stop rule compares with the target (named in the completed event).
STOP_RELIABILITY = "posterior_reliability"
# The search range of the ability variance (logits^2): sd 0.1 to 10 covers coin flips (driven to
# the floor) and the widest essay sets (sd 2.5 is wide).
MIN_ABILITY_VARIANCE = 1e-2
MAX_ABILITY_VARIANCE = 1e2
# Tolerance of the search on log tau^2 (2 %: the reliability moves by well under 0.01).
LOG_VARIANCE_TOLERANCE = 0.02
# The level of the likelihood-ratio test of "the essays do not differ" (tau^2 at the floor)
# against the type-II ML spread, and its critical value in nats of log evidence: tau^2 = 0 is on
# the boundary, so twice the difference follows the mixture 1/2 chi2_0 + 1/2 chi2_1 under the
# null and the critical value is chi2_1's upper 2 * level quantile, halved (2.71 nats at 0.01).
SPREAD_TEST_LEVEL = 0.01
SPREAD_TEST_CRITICAL_NATS = 0.5 * float(chdtri(1, 2.0 * SPREAD_TEST_LEVEL))


@dataclass(frozen=True, slots=True)
class _TypeIISearch:
    """The Laplace approximation at the ability variance that maximises it, and at the floor of
    the search range (the "essays do not differ" end of the likelihood-ratio test)."""

    best: LaplaceEvidence
    floor: LaplaceEvidence


def _type_ii_search(comparisons: Comparisons, *, exact: bool) -> _TypeIISearch:
    """The Laplace approximation at the ability variance that maximises it (bounded search on
    log tau^2), and at MIN_ABILITY_VARIANCE (evaluated last). Each MAP fit starts from the fit
    at the nearest variance tried so far."""
    tried: dict[float, LaplaceEvidence] = {}

    def negative(log_variance: float) -> float:
        nearest = min(tried, key=lambda tried_at: abs(tried_at - log_variance), default=None)
        evidence = laplace_evidence(
            comparisons,
            prior_precision=math.exp(-log_variance),
            initial=None if nearest is None else tried[nearest].fit,
            exact=exact,
        )
        tried[log_variance] = evidence
        return -evidence.log_evidence

    floor = math.log(MIN_ABILITY_VARIANCE)
    minimize_scalar(
        negative,
        bounds=(floor, math.log(MAX_ABILITY_VARIANCE)),
        method="bounded",
        options={"xatol": LOG_VARIANCE_TOLERANCE},
    )
    best = max(tried.values(), key=lambda evidence: evidence.log_evidence)
    negative(floor)  # after the search, which then runs as before, from the nearest fit
    return _TypeIISearch(best, tried[floor])


def ability_variance(comparisons: Comparisons, *, exact: bool = False) -> float:
    """The prior variance of the abilities that maximises the Laplace-approximate marginal
    likelihood of the comparisons (type-II maximum likelihood); `exact` as in
    `posterior_reliability`."""
    return 1.0 / _type_ii_search(comparisons, exact=exact).best.prior_precision


def posterior_reliability(
    comparisons: Comparisons, *, exact: bool = False, spread_test: bool = True
) -> float | None:
    """Expected squared correlation of the fitted scores with the true abilities, under a
    Bradley-Terry fit whose ability variance is estimated from the comparisons (empirical
    Bayes); 0 where the likelihood-ratio test does not show that the essays differ; None with
    fewer than 3 essays or no comparisons.

    Above DENSE_LOG_DET_MAX_ESSAYS essays the log-determinants and the posterior variances are
    stochastic estimates (see the module docstring); `exact` computes them by dense
    factorisations instead (cubic in the essays: the reference for tests and benchmarks).
    `spread_test=False` skips the test: the plug-in figure, a reference for benchmarks.
    """
    n = comparisons.n_essays
    if n < 3 or len(comparisons) == 0:
        return None
    comparisons = weigh_soft_verdicts(comparisons)
    search = _type_ii_search(comparisons, exact=exact)
    if spread_test and (
        search.best.log_evidence - search.floor.log_evidence < SPREAD_TEST_CRITICAL_NATS
    ):
        # The comparisons do not show that the essays differ at all (see the module docstring).
        return 0.0
    best = search.best
    # Sums over the centred scores: the ratio of the expected covariance of mu with theta to the
    # expected spread of theta, both with n - 1 degrees of freedom.
    signal = float(np.sum(best.fit.scores**2))
    noise = total_posterior_variance(best, exact=exact)
    if signal + noise <= 0.0:
        return 0.0
    return float(np.clip(signal / (signal + noise), 0.0, 1.0))


@dataclass(frozen=True, slots=True)
class StopRule:
    """A batch's reliability target and when it may be checked (`check_every`: answers between
    two checks, paced by what a check costs, see domain/pacing.py)."""

    target_reliability: float | None
    min_comparisons_per_essay: float
    check_every: int

    def check_due(self, *, n_essays: int, answered_now: int, last_checked: int | None) -> bool:
        """True when a target is set, the minimum per essay is reached, and `check_every`
        answers arrived since the last check (`last_checked`: the answers then; None before
        the first)."""
        if self.target_reliability is None or n_essays == 0:
            return False
        if 2.0 * answered_now / n_essays < self.min_comparisons_per_essay:
            return False
        return last_checked is None or answered_now - last_checked >= max(1, self.check_every)

    def met(self, reliability: float | None) -> bool:
        """True when the estimate reaches the target."""
        return (
            self.target_reliability is not None
            and reliability is not None
            and reliability >= self.target_reliability
        )
