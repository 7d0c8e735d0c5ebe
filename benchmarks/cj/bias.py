"""`bias`: the reported position bias and its standard error against a known order effect."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.cj.pairing import ESSAYS, Judge, planned_design
from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.scoring import ScoredEssay, score_batch

SPREAD = 1.5
PER_ESSAY = 10
TRUTHS = (0.0, 0.6)
TARGET_MEAN_ERROR = 0.05
TARGET_SE_RATIO = 0.25


def simulate_batch(seed: int, bias: float) -> tuple[float, float]:
    """One batch planned as the service plans it (coverage wave, then adaptive waves up to
    PER_ESSAY comparisons per essay, A/B balanced by the planner) and judged by a Bradley-Terry
    judge with a known order effect; the reported position bias and its standard error."""
    judge = Judge(np.random.default_rng(seed + 10_000), bias, SPREAD)
    pairs, wins, _ = planned_design(judge, ESSAYS * PER_ESSAY // 2, np.random.default_rng(seed))
    scored = score_batch(
        [ScoredEssay(f"e{i}") for i in range(ESSAYS)],
        Comparisons.from_lists(
            ESSAYS, [a for a, _ in pairs], [b for _, b in pairs], [bool(w) for w in wins]
        ),
    )
    logit = scored.statistics.position_bias_logit
    error = scored.statistics.position_bias_standard_error
    assert logit is not None
    assert error is not None
    return logit, error


def run_truth(seeds: int, truth: float) -> dict[str, Any]:
    """Mean estimate, its error, mean reported SE and the spread of the estimates over seeds."""
    results = [simulate_batch(seed, truth) for seed in range(seeds)]
    estimates = np.array([r[0] for r in results])
    errors = np.array([r[1] for r in results])
    mean = float(estimates.mean())
    spread = float(estimates.std(ddof=1))
    mean_se = float(errors.mean())
    se_ratio = mean_se / spread
    mean_met = abs(mean - truth) <= TARGET_MEAN_ERROR
    se_met = abs(se_ratio - 1.0) <= TARGET_SE_RATIO
    print(
        f"bias ({ESSAYS} essays, ability sd {SPREAD}, planner at {PER_ESSAY} comparisons/essay, "
        f"{seeds} seeds), true position bias {truth}: mean fitted {mean:.3f} "
        f"(difference {mean - truth:+.3f}, target within +-{TARGET_MEAN_ERROR}: "
        f"{'met' if mean_met else 'not met'}); mean reported SE {mean_se:.3f} vs sd of the "
        f"estimates {spread:.3f} -> ratio {se_ratio:.2f} (target 1 +- {TARGET_SE_RATIO}: "
        f"{'met' if se_met else 'not met'}); standard error of the mean "
        f"{spread / np.sqrt(seeds):.3f}",
        flush=True,
    )
    return {
        "true_position_bias": truth,
        "mean_estimate": round(mean, 4),
        "difference": round(mean - truth, 4),
        "mean_standard_error": round(mean_se, 4),
        "sd_of_estimates": round(spread, 4),
        "se_to_sd_ratio": round(se_ratio, 3),
        "mean_within_target": mean_met,
        "se_within_target": se_met,
    }


def run(seeds: int = 32) -> dict[str, Any]:
    """Both true order effects from the issue."""
    return {
        "essays": ESSAYS,
        "ability_sd": SPREAD,
        "comparisons_per_essay": PER_ESSAY,
        "design": "planner (coverage wave, then adaptive waves; A/B balanced)",
        "seeds": seeds,
        "targets": {"mean_difference": TARGET_MEAN_ERROR, "se_to_sd_ratio": TARGET_SE_RATIO},
        "cases": [run_truth(seeds, truth) for truth in TRUTHS],
    }
