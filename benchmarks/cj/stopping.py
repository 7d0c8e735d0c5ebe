"""`stopping`: does the reliability stop rule stop at the right time, and is its claim honest?

A simulated Bradley-Terry judge with known abilities; the batch is planned as the service plans
it (`pairing.planned_design`: opening pairs, then top-ups keeping a target in flight) with a
budget of 20 comparisons per essay, and the stop rule of the service (`domain.stopping`) checked
as the service checks it. At the stop: comparisons per essay spent, the reliability the stop
claimed, and the reliability achieved (squared correlation of the fitted scores with the true
abilities). Beside it, the scale separation reliability of the same fit (what a stop rule on it
would have claimed) as the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.cj.pairing import ESSAYS, Judge, Pairs, planned_design
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    scale_separation_reliability,
)
from cj_assessment_service.domain.stopping import STOP_RELIABILITY, StopRule, posterior_reliability

BUDGET_PER_ESSAY = 20
TARGETS = (0.8, 0.9)
SPREADS = (1.5, 2.5)
POSITION_BIAS = 0.3
HONESTY_MARGIN = 0.03
MAX_SPENT_SHARE = 0.6
MIN_PER_ESSAY: float = Settings.model_fields["min_comparisons_per_essay_before_stop"].default
CHECK_STEP: float = Settings.model_fields["reliability_check_step"].default


@dataclass(frozen=True)
class Stop:
    """One batch's stop for one target."""

    per_essay: float
    claimed: float | None
    achieved: float
    scale_separation: float | None
    stable: bool


def _achieved(judge: Judge, comparisons: Comparisons) -> tuple[float, float | None]:
    fit = fit_bradley_terry(comparisons)
    assert fit.standard_errors is not None
    r = float(np.corrcoef(fit.scores, judge.theta)[0, 1])
    return r * r, scale_separation_reliability(fit.scores, fit.standard_errors)


def simulate(seed: int, spread: float) -> dict[float, Stop]:
    """One batch run until the highest target is met or the budget is spent; the stop of each
    target (the planner does not know the target, so one run serves every target)."""
    judge = Judge(np.random.default_rng(seed + 10_000), POSITION_BIAS, spread)
    budget = ESSAYS * BUDGET_PER_ESSAY // 2
    rule = StopRule(
        target_reliability=min(TARGETS),
        min_comparisons_per_essay=MIN_PER_ESSAY,
        check_every=math.ceil(CHECK_STEP * ESSAYS / 2),
    )
    stops: dict[float, Stop] = {}
    last = [0]

    def comparisons_of(pairs: Pairs, wins: list[bool]) -> Comparisons:
        return Comparisons.from_lists(ESSAYS, [p[0] for p in pairs], [p[1] for p in pairs], wins)

    def check(pairs: Pairs, wins: list[bool]) -> bool:
        before, last[0] = last[0], len(pairs)
        if not rule.check_due(n_essays=ESSAYS, answered_before=before, answered_now=len(pairs)):
            return False
        comparisons = comparisons_of(pairs, wins)
        estimate = posterior_reliability(comparisons)
        for target in TARGETS:
            if target not in stops and estimate is not None and estimate >= target:
                achieved, ssr = _achieved(judge, comparisons)
                stops[target] = Stop(2 * len(pairs) / ESSAYS, estimate, achieved, ssr, True)
        return len(stops) == len(TARGETS)

    pairs, wins = planned_design(judge, budget, np.random.default_rng(seed), after_answers=check)
    for target in TARGETS:
        if target not in stops:
            comparisons = comparisons_of(pairs, wins)
            achieved, ssr = _achieved(judge, comparisons)
            stops[target] = Stop(
                2 * len(pairs) / ESSAYS, posterior_reliability(comparisons), achieved, ssr, False
            )
    return stops


def run_case(runs: list[dict[float, Stop]], spread: float, target: float) -> dict[str, Any]:
    """Figures of one (spread, target) over the seeds."""
    stops = [r[target] for r in runs]
    per_essay = float(np.mean([s.per_essay for s in stops]))
    claimed = float(np.mean([s.claimed for s in stops if s.claimed is not None]))
    achieved = float(np.mean([s.achieved for s in stops]))
    ssr = float(np.mean([s.scale_separation for s in stops if s.scale_separation is not None]))
    stable = sum(s.stable for s in stops)
    honest = achieved >= claimed - HONESTY_MARGIN
    spent = per_essay / BUDGET_PER_ESSAY
    print(
        f"stopping ({ESSAYS} essays, ability sd {spread}, target {target}, {len(stops)} seeds): "
        f"stopped STABLE in {stable}/{len(stops)} at {per_essay:.1f} comparisons/essay "
        f"({spent:.0%} of a {BUDGET_PER_ESSAY}-per-essay budget); claimed posterior reliability "
        f"{claimed:.3f}, achieved {achieved:.3f} (target >= claimed - {HONESTY_MARGIN}: "
        f"{'met' if honest else 'not met'}); reference: scale separation reliability at the "
        f"same stop {ssr:.3f}",
        flush=True,
    )
    return {
        "ability_sd": spread,
        "target_reliability": target,
        "stopped_stable": stable,
        "comparisons_per_essay": round(per_essay, 2),
        "share_of_budget": round(spent, 3),
        "claimed_reliability": round(claimed, 4),
        "achieved_reliability": round(achieved, 4),
        "honest": honest,
        "scale_separation_reliability_at_stop": round(ssr, 4),
    }


def run(seeds: int = 32) -> dict[str, Any]:
    """Both spreads and both targets; at sd 2.5 and target 0.9 at most 60 % of the budget."""
    cases: list[dict[str, Any]] = []
    for spread in SPREADS:
        runs = [simulate(seed, spread) for seed in range(seeds)]
        cases.extend(run_case(runs, spread, target) for target in TARGETS)
    wide = next(c for c in cases if c["ability_sd"] == 2.5 and c["target_reliability"] == 0.9)
    return {
        "essays": ESSAYS,
        "seeds": seeds,
        "budget_per_essay": BUDGET_PER_ESSAY,
        "position_bias": POSITION_BIAS,
        "stop_reliability": STOP_RELIABILITY,
        "min_comparisons_per_essay": MIN_PER_ESSAY,
        "targets": {
            "achieved_at_least_claimed_minus": HONESTY_MARGIN,
            "max_share_of_budget_at_sd_2.5_target_0.9": MAX_SPENT_SHARE,
        },
        "wide_spread_share_met": wide["share_of_budget"] <= MAX_SPENT_SHARE,
        "cases": cases,
    }
