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

from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    LaplaceEvidence,
    laplace_evidence,
    total_posterior_variance,
)

# The statistics field the stop rule compares with the target (named in the completed event).
STOP_RELIABILITY = "posterior_reliability"
# The search range of the ability variance (logits^2): sd 0.1 to 10 covers coin flips (driven to
# the floor) and the widest essay sets (sd 2.5 is wide).
MIN_ABILITY_VARIANCE = 1e-2
MAX_ABILITY_VARIANCE = 1e2
# Tolerance of the search on log tau^2 (2 %: the reliability moves by well under 0.01).
LOG_VARIANCE_TOLERANCE = 0.02


def _type_ii_search(comparisons: Comparisons, *, exact: bool) -> LaplaceEvidence:
    """The Laplace approximation at the ability variance that maximises it (bounded search on
    log tau^2). Each MAP fit starts from the fit at the nearest variance tried so far."""
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

    minimize_scalar(
        negative,
        bounds=(math.log(MIN_ABILITY_VARIANCE), math.log(MAX_ABILITY_VARIANCE)),
        method="bounded",
        options={"xatol": LOG_VARIANCE_TOLERANCE},
    )
    return max(tried.values(), key=lambda evidence: evidence.log_evidence)


def ability_variance(comparisons: Comparisons, *, exact: bool = False) -> float:
    """The prior variance of the abilities that maximises the Laplace-approximate marginal
    likelihood of the comparisons (type-II maximum likelihood); `exact` as in
    `posterior_reliability`."""
    return 1.0 / _type_ii_search(comparisons, exact=exact).prior_precision


def posterior_reliability(comparisons: Comparisons, *, exact: bool = False) -> float | None:
    """Expected squared correlation of the fitted scores with the true abilities, under a
    Bradley-Terry fit whose ability variance is estimated from the comparisons (empirical
    Bayes); None with fewer than 3 essays or no comparisons.

    Above DENSE_LOG_DET_MAX_ESSAYS essays the log-determinants and the posterior variances are
    stochastic estimates (see the module docstring); `exact` computes them by dense
    factorisations instead (cubic in the essays: the reference for tests and benchmarks).
    """
    n = comparisons.n_essays
    if n < 3 or len(comparisons) == 0:
        return None
    best = _type_ii_search(comparisons, exact=exact)
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
