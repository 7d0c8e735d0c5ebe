"""The reliability stop rule: finish a batch once its ranking is reliable enough.

The figure it stops on is the posterior reliability of an empirical-Bayes Bradley-Terry fit:
abilities get a Gaussian prior N(0, tau^2) whose variance is estimated from the comparisons
themselves (MacKay's fixed point: tau^2 = sum(mu^2) / gamma, gamma = n - sum(v) / tau^2, with mu
the posterior means and v their variances), and the reliability is 1 - mean(v) / tau^2 = gamma /
n, the expected squared correlation of the fitted scores with the true abilities under that fit.

Why this one: which pair is asked next depends only on answers already seen, so the likelihood,
and with it a posterior, is the same as for a fixed design (the design is ignorable). Statistics
that are not likelihood-based are not protected: scale separation reliability takes the spread of
weakly shrunk scores as signal, and adaptive pairing (winners meet winners) spreads them out
(Bramley 2015: coin-flip judgements reached 0.89); split-half reliability fits both halves on
one adaptively chosen network of opponents, which carries the same spread into both (0.81 on
coin flips, see tests/unit/domain/test_stopping.py). With tau^2 estimated, coin flips give a
small tau^2 and about 0.3 on the same data (40 essays, 20 comparisons each). The Laplace
approximation under-estimates tau^2 for binary data (the known downward bias of penalised
quasi-likelihood), so the figure errs low: the batch stops later than it needs to, never on a
claim it has not earned. `benchmarks/cj/stopping.py` measures the claim against
the achieved squared correlation with the true abilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cj_assessment_service.domain.bradley_terry import Comparisons, fit_bradley_terry

# The statistics field the stop rule compares with the target (named in the completed event).
STOP_RELIABILITY = "posterior_reliability"
# Fixed-point iterations for tau^2 (a real batch converges in about five; coin flips drive
# tau^2 towards 0 and are stopped by the floor).
MAX_ITERATIONS = 30
CONVERGED_LOG_CHANGE = 1e-3
MIN_ABILITY_VARIANCE = 1e-6


def posterior_reliability(comparisons: Comparisons) -> float | None:
    """Expected squared correlation of the fitted scores with the true abilities, under a
    Bradley-Terry fit whose ability variance is estimated from the comparisons (empirical
    Bayes); None with fewer than 3 essays or no comparisons."""
    n = comparisons.n_essays
    if n < 3 or len(comparisons) == 0:
        return None
    variance = 1.0
    reliability = 0.0
    for _ in range(MAX_ITERATIONS):
        fit = fit_bradley_terry(comparisons, prior_precision=1.0 / variance)
        assert fit.standard_errors is not None
        posterior_variance = float(np.sum(fit.standard_errors**2))
        # Scores are centred: n - 1 free abilities.
        gamma = max(n - 1 - posterior_variance / variance, 0.0)
        reliability = gamma / (n - 1)
        updated = max(float(np.sum(fit.scores**2)) / max(gamma, 1e-9), MIN_ABILITY_VARIANCE)
        converged = abs(math.log(updated / variance)) < CONVERGED_LOG_CHANGE
        variance = updated
        if converged or variance <= MIN_ABILITY_VARIANCE:
            break
    return float(np.clip(reliability, 0.0, 1.0))


@dataclass(frozen=True, slots=True)
class StopRule:
    """A batch's reliability target and when it may be checked."""

    target_reliability: float | None
    min_comparisons_per_essay: float
    check_every: int

    def check_due(self, *, n_essays: int, answered_before: int, answered_now: int) -> bool:
        """True when a target is set, the minimum per essay is reached and the answers crossed a
        multiple of `check_every` (so a batch of answers triggers at most one estimate)."""
        if self.target_reliability is None or n_essays == 0:
            return False
        if 2.0 * answered_now / n_essays < self.min_comparisons_per_essay:
            return False
        step = max(1, self.check_every)
        return answered_now // step > answered_before // step or (
            2.0 * answered_before / n_essays < self.min_comparisons_per_essay
        )

    def met(self, reliability: float | None) -> bool:
        """True when the estimate reaches the target."""
        return (
            self.target_reliability is not None
            and reliability is not None
            and reliability >= self.target_reliability
        )
