"""`stopping`: does the reliability stop rule stop at the right time, and is its claim honest?

A simulated judge with known abilities (`pairing.SoftJudge`: its hard verdicts, its choices,
follow a probit model; with soft verdicts it also states its probability, calibrated or 2x
overconfident in logits); the batch is planned as the service plans it
(`pairing.planned_design`: opening pairs, then top-ups keeping a target in flight) with a
budget of 20 comparisons per essay, and the stop rule of the service (`domain.stopping`) checked
as the service checks it. At the stop: comparisons per essay spent, the reliability the stop
claimed, and the reliability achieved (squared correlation of the fitted scores with the true
abilities). Beside it, the scale separation reliability of the same fit (what a stop rule on it
would have claimed) as the reference.

Honest on noise: 100 essays of equal quality judged by a coin and by a judge that prefers the
essay shown first (p 0.75), planned and checked the same way, run to the budget: whether the
stop fired, and the posterior reliability at the budget beside the plug-in figure without the
likelihood-ratio test and the scale separation and split-half reliability of the same batches.

Every batch of hard verdicts runs to the budget (the planner does not know the target, so the
design is the same with or without a stop) and records the achieved reliability every half
comparison per essay: the oracle curve, where a perfectly calibrated stop would fire, and the
claim at each check beside it (calibration by spend). Batches of soft verdicts end once every
target has stopped (the same figures at the stops, less CPU).

Honest on noise uses the Bradley-Terry judge of hard verdicts (`pairing.Judge`) with no ability
spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.cj.pairing import (
    ESSAYS,
    OVERCONFIDENT_SHARPNESS,
    SOFT_NOISE,
    Judge,
    Pairs,
    comparisons_of,
    make_judge,
    planned_design,
)
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    fit_bradley_terry,
    scale_separation_reliability,
    split_half_reliability,
    weigh_soft_verdicts,
)
from cj_assessment_service.domain.stopping import STOP_RELIABILITY, StopRule, posterior_reliability

BUDGET_PER_ESSAY = 20
TARGETS = (0.8, 0.9)
SPREADS = (1.5, 2.5)
POSITION_BIAS = 0.3
HONESTY_MARGIN = 0.03
# The targets at 0.9: share of the budget spent by the stop, by kind of verdicts.
MAX_SPENT_SHARE = {"hard": 0.6, "soft": 0.4, "soft, overconfident": 0.4}
# The overconfident judge's claims must stay within this of the achieved reliability.
OVERCONFIDENT_HONESTY_MARGIN = 0.05
# A single batch's shortfall counted as a miss (the spread behind the mean).
MISS_MARGIN = 0.05
CURVE_FROM = 2.0
# Judges of equal essays: a coin, and one preferring the essay shown first (logit 1.1: p 0.75).
NOISE_FIRST_PREFERENCES = (0.0, 1.1)
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


@dataclass(frozen=True)
class Run:
    """One batch: the stop of each target, and by comparisons per essay the achieved reliability
    (oracle) and, at the stop rule's checks, its claim."""

    stops: dict[float, Stop]
    achieved: dict[float, float]
    claimed: dict[float, float]


def _achieved(judge: Judge, comparisons: Comparisons) -> tuple[float, float | None]:
    fit = fit_bradley_terry(weigh_soft_verdicts(comparisons))
    assert fit.standard_errors is not None
    r = float(np.corrcoef(fit.scores, judge.theta)[0, 1])
    return r * r, scale_separation_reliability(fit.scores, fit.standard_errors)


def simulate(seed: int, spread: float, *, soft: bool = False, sharpness: float = 1.0) -> Run:
    """One batch; the stop of each target where the stop rule would have fired (the planner
    does not know the target, so one run serves every target). Hard verdicts run on to the
    budget for the oracle curve; soft ones end at the last target's stop (CPU)."""
    judge = make_judge(seed, POSITION_BIAS, spread, soft=soft, sharpness=sharpness)
    budget = ESSAYS * BUDGET_PER_ESSAY // 2
    rule = StopRule(
        target_reliability=min(TARGETS),
        min_comparisons_per_essay=MIN_PER_ESSAY,
        check_every=math.ceil(CHECK_STEP * ESSAYS / 2),
    )
    curve_every = math.ceil(CHECK_STEP * ESSAYS / 2)
    stops: dict[float, Stop] = {}
    achieved_curve: dict[float, float] = {}
    claimed_curve: dict[float, float] = {}
    last_checked: list[int | None] = [None]

    def check(pairs: Pairs, wins: list[bool], probabilities: list[float | None]) -> bool:
        per_essay = 2 * len(pairs) / ESSAYS
        on_curve = len(pairs) % curve_every == 0 and per_essay >= CURVE_FROM
        due = rule.check_due(n_essays=ESSAYS, answered_now=len(pairs), last_checked=last_checked[0])
        if due:
            last_checked[0] = len(pairs)
        if not (on_curve or due):
            return False
        comparisons = comparisons_of(pairs, wins, probabilities)
        achieved, ssr = _achieved(judge, comparisons)
        if on_curve:
            achieved_curve[per_essay] = achieved
        if not due:
            return False
        estimate = posterior_reliability(comparisons)
        if estimate is not None:
            claimed_curve[per_essay] = estimate
        for target in TARGETS:
            if target not in stops and estimate is not None and estimate >= target:
                stops[target] = Stop(per_essay, estimate, achieved, ssr, True)
        # Hard verdicts run on to the budget for the oracle curve.
        return soft and len(stops) == len(TARGETS)

    pairs, wins, probabilities = planned_design(
        judge, budget, np.random.default_rng(seed), after_answers=check
    )
    for target in TARGETS:
        if target not in stops:
            comparisons = comparisons_of(pairs, wins, probabilities)
            achieved, ssr = _achieved(judge, comparisons)
            stops[target] = Stop(
                2 * len(pairs) / ESSAYS, posterior_reliability(comparisons), achieved, ssr, False
            )
    return Run(stops, achieved_curve, claimed_curve)


def oracle_curve(runs: list[Run], spread: float) -> dict[str, Any]:
    """Mean achieved and mean claimed reliability by comparisons per essay, and where the mean
    achieved first reaches each target (where a calibrated stop would fire on average)."""
    points = sorted(set.intersection(*(set(r.achieved) for r in runs)))
    achieved = {k: float(np.mean([r.achieved[k] for r in runs])) for k in points}
    claimed_points = sorted(set.intersection(*(set(r.claimed) for r in runs)))
    claimed = {k: float(np.mean([r.claimed[k] for r in runs])) for k in claimed_points}
    reaches = {
        str(target): next((k for k in points if achieved[k] >= target), None) for target in TARGETS
    }
    print(
        f"  oracle, ability sd {spread}: achieved reliability by comparisons/essay "
        + " ".join(f"{k:g}:{achieved[k]:.3f}" for k in points if k == int(k))
        + "\n  claimed at the checks:                          "
        + " ".join(f"{k:g}:{claimed[k]:.3f}" for k in claimed_points if k == int(k))
        + "\n  the mean achieved reaches "
        + ", ".join(
            f"{t} at {'never' if k is None else f'{k:g}/essay ({k / BUDGET_PER_ESSAY:.0%})'}"
            for t, k in reaches.items()
        ),
        flush=True,
    )
    return {
        "ability_sd": spread,
        "achieved_by_comparisons_per_essay": {f"{k:g}": round(v, 4) for k, v in achieved.items()},
        "claimed_by_comparisons_per_essay": {f"{k:g}": round(v, 4) for k, v in claimed.items()},
        "mean_achieved_reaches_target_at": reaches,
    }


def run_case(
    runs: list[Run], spread: float, target: float, verdicts: str = "hard"
) -> dict[str, Any]:
    """Figures of one (spread, target, kind of verdicts) over the seeds."""
    stops = [r.stops[target] for r in runs]
    per_essay = float(np.mean([s.per_essay for s in stops]))
    claimed = float(np.mean([s.claimed for s in stops if s.claimed is not None]))
    achieved = float(np.mean([s.achieved for s in stops]))
    ssr = float(np.mean([s.scale_separation for s in stops if s.scale_separation is not None]))
    stable = sum(s.stable for s in stops)
    misses = sum(
        s.claimed is not None and s.achieved < s.claimed - MISS_MARGIN for s in stops if s.stable
    )
    shortfall = [s.claimed - s.achieved for s in stops if s.stable and s.claimed is not None]
    spread_text = (
        f"median {np.median(shortfall):+.3f}, max {max(shortfall):+.3f}" if shortfall else "-"
    )
    margin = OVERCONFIDENT_HONESTY_MARGIN if "overconfident" in verdicts else HONESTY_MARGIN
    honest = abs(achieved - claimed) <= margin
    spent = per_essay / BUDGET_PER_ESSAY
    print(
        f"stopping ({ESSAYS} essays, ability sd {spread}, {verdicts} verdicts, target {target}, "
        f"{len(stops)} seeds): "
        f"stopped STABLE in {stable}/{len(stops)} at {per_essay:.1f} comparisons/essay "
        f"({spent:.0%} of a {BUDGET_PER_ESSAY}-per-essay budget"
        + (f", target <= {MAX_SPENT_SHARE[verdicts]:.0%}" if target == 0.9 else "")
        + "); claimed posterior reliability "
        f"{claimed:.3f}, achieved {achieved:.3f} (target: within {margin}: "
        f"{'met' if honest else 'not met'}); reference: scale separation reliability at the "
        f"same stop {ssr:.3f}; of the STABLE stops {misses}/{stable} achieved < claimed - "
        f"{MISS_MARGIN} (claimed - achieved: "
        f"{spread_text})",
        flush=True,
    )
    return {
        "ability_sd": spread,
        "verdicts": verdicts,
        "target_reliability": target,
        "max_share_of_budget": MAX_SPENT_SHARE[verdicts] if target == 0.9 else None,
        "share_met": spent <= MAX_SPENT_SHARE[verdicts] if target == 0.9 else None,
        "stopped_stable": stable,
        "comparisons_per_essay": round(per_essay, 2),
        "share_of_budget": round(spent, 3),
        "claimed_reliability": round(claimed, 4),
        "achieved_reliability": round(achieved, 4),
        "honest": honest,
        "scale_separation_reliability_at_stop": round(ssr, 4),
        "stable_stops_achieved_below_claimed_minus_miss_margin": misses,
        "stable_stops_claimed_minus_achieved_max": (
            round(max(shortfall), 4) if shortfall else None
        ),
    }


@dataclass(frozen=True)
class NoiseRun:
    """One batch of equal essays run to the budget: whether the stop rule fired at any check
    (at the lowest target), and the figures at the budget."""

    stopped: bool
    claimed: float
    plug_in: float
    scale_separation: float | None
    split_half: float | None


def simulate_noise(seed: int, first_preference: float) -> NoiseRun:
    """Essays of equal quality, judged by a coin weighted `first_preference` (logits) towards
    the essay shown first, planned and checked as the service does, run to the budget."""
    judge = Judge(np.random.default_rng(seed + 20_000), first_preference, 0.0)
    rule = StopRule(
        target_reliability=min(TARGETS),
        min_comparisons_per_essay=MIN_PER_ESSAY,
        check_every=math.ceil(CHECK_STEP * ESSAYS / 2),
    )
    last_checked: list[int | None] = [None]
    stopped = [False]

    def check(pairs: Pairs, wins: list[bool], _: list[float | None]) -> bool:
        if rule.check_due(n_essays=ESSAYS, answered_now=len(pairs), last_checked=last_checked[0]):
            last_checked[0] = len(pairs)
            comparisons = Comparisons.from_lists(
                ESSAYS, [p[0] for p in pairs], [p[1] for p in pairs], wins
            )
            stopped[0] = stopped[0] or rule.met(posterior_reliability(comparisons))
        return False

    budget = ESSAYS * BUDGET_PER_ESSAY // 2
    pairs, wins, _ = planned_design(judge, budget, np.random.default_rng(seed), after_answers=check)
    comparisons = Comparisons.from_lists(ESSAYS, [p[0] for p in pairs], [p[1] for p in pairs], wins)
    fit = fit_bradley_terry(comparisons)
    assert fit.standard_errors is not None
    return NoiseRun(
        stopped[0],
        posterior_reliability(comparisons) or 0.0,
        posterior_reliability(comparisons, spread_test=False) or 0.0,
        scale_separation_reliability(fit.scores, fit.standard_errors),
        split_half_reliability(comparisons),
    )


def noise_case(seeds: int, first_preference: float) -> dict[str, Any]:
    """Figures of one noise judge over the seeds, beside the plug-in posterior reliability
    (without the likelihood-ratio test) and the classical figures of the same batches."""
    runs = [simulate_noise(seed, first_preference) for seed in range(seeds)]
    claimed = [r.claimed for r in runs]
    plug_in = [r.plug_in for r in runs]
    ssr = [r.scale_separation for r in runs if r.scale_separation is not None]
    split = [r.split_half for r in runs if r.split_half is not None]
    stops = sum(r.stopped for r in runs)
    print(
        f"stopping on noise ({ESSAYS} equal essays, first-shown preference {first_preference} "
        f"logits, {seeds} seeds, budget {BUDGET_PER_ESSAY}/essay): stop at {min(TARGETS)} fired "
        f"in {stops}/{seeds}; posterior reliability mean {np.mean(claimed):.3f}, max "
        f"{max(claimed):.3f}; reference (same batches): plug-in without the test mean "
        f"{np.mean(plug_in):.3f}, max {max(plug_in):.3f}; scale separation mean "
        f"{np.mean(ssr):.3f}, split-half mean {np.mean(split):.3f} (both marked not valid)",
        flush=True,
    )
    return {
        "first_shown_preference_logit": first_preference,
        "stops_at_lowest_target": stops,
        "posterior_reliability_mean": round(float(np.mean(claimed)), 4),
        "posterior_reliability_max": round(max(claimed), 4),
        "plug_in_without_test_mean": round(float(np.mean(plug_in)), 4),
        "plug_in_without_test_max": round(max(plug_in), 4),
        "scale_separation_mean": round(float(np.mean(ssr)), 4),
        "split_half_mean": round(float(np.mean(split)), 4),
    }


# Soft verdicts: (ability sd, overconfidence) of the simulated judge, essays, per essay, seeds.
SOFT_CASES = ((0.7, 1.0), (1.5, 1.0), (2.5, 1.0), (1.5, 2.0))
SOFT_ESSAYS, SOFT_PER_ESSAY, SOFT_SEEDS = 100, 10, 6


def _soft_judged(seed: int, spread: float, overconfidence: float) -> tuple[Comparisons, Any]:
    """Random pairs; the judge states q = sigmoid(overconfidence * (ability difference + 0.3 +
    N(0, 1) noise)) and its hard verdict is q > 1/2."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, SOFT_ESSAYS)
    m = SOFT_ESSAYS * SOFT_PER_ESSAY // 2
    a = rng.integers(0, SOFT_ESSAYS, m)
    b = (a + rng.integers(1, SOFT_ESSAYS, m)) % SOFT_ESSAYS
    latent = theta[a] - theta[b] + POSITION_BIAS + rng.normal(0.0, 1.0, m)
    probability = 1.0 / (1.0 + np.exp(-overconfidence * latent))
    return Comparisons(SOFT_ESSAYS, a, b, probability > 0.5, probability), theta


def soft_case(spread: float, overconfidence: float) -> dict[str, Any]:
    """Claimed and achieved posterior reliability with soft verdicts, beside the same judge's
    hard verdicts (the reference)."""
    figures: dict[str, tuple[list[float], list[float]]] = {"soft": ([], []), "hard": ([], [])}
    for seed in range(SOFT_SEEDS):
        soft, theta = _soft_judged(seed, spread, overconfidence)
        hard = Comparisons(soft.n_essays, soft.essay_a, soft.essay_b, soft.a_won)
        for name, comparisons in (("soft", soft), ("hard", hard)):
            weighed = weigh_soft_verdicts(comparisons)
            figures[name][0].append(posterior_reliability(weighed) or 0.0)
            r = float(np.corrcoef(fit_bradley_terry(weighed).scores, theta)[0, 1])
            figures[name][1].append(r * r)
    means = {k: (float(np.mean(c)), float(np.mean(a))) for k, (c, a) in figures.items()}
    print(
        f"soft verdicts ({SOFT_ESSAYS} essays, {SOFT_PER_ESSAY}/essay, ability sd {spread}, "
        f"overconfidence {overconfidence}, {SOFT_SEEDS} seeds): claimed {means['soft'][0]:.3f} "
        f"-> achieved {means['soft'][1]:.3f}; reference, the same judge's hard verdicts: "
        f"claimed {means['hard'][0]:.3f} -> achieved {means['hard'][1]:.3f}",
        flush=True,
    )
    return {
        "ability_sd": spread,
        "overconfidence": overconfidence,
        "soft_claimed": round(means["soft"][0], 4),
        "soft_achieved": round(means["soft"][1], 4),
        "hard_claimed": round(means["hard"][0], 4),
        "hard_achieved": round(means["hard"][1], 4),
        "soft_honest": abs(means["soft"][0] - means["soft"][1]) < HONESTY_MARGIN,
    }


# Soft-verdict stops: (ability sd, sharpness of the judge's probabilities, label).
SOFT_STOPS = (
    (1.5, 1.0, "soft"),
    (2.5, 1.0, "soft"),
    (2.5, OVERCONFIDENT_SHARPNESS, "soft, overconfident"),
)


def run(seeds: int = 32) -> dict[str, Any]:
    """Both spreads and both targets with the soft judge's hard verdicts, then its soft ones
    (calibrated, and overconfident at sd 2.5); at target 0.9 at most 60 % of the budget with
    hard verdicts and 40 % with soft ones; and equal essays (a coin, and a judge preferring the
    first essay) must claim about 0."""
    cases: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    # Half the seeds: each noise batch runs every check to the budget (no stop to end it).
    noise = [noise_case(max(1, seeds // 2), p) for p in NOISE_FIRST_PREFERENCES]
    soft = [soft_case(spread, overconfidence) for spread, overconfidence in SOFT_CASES]
    for spread in SPREADS:
        runs = [simulate(seed, spread) for seed in range(seeds)]
        cases.extend(run_case(runs, spread, target) for target in TARGETS)
        curves.append(oracle_curve(runs, spread))
    for spread, sharpness, label in SOFT_STOPS:
        runs = [simulate(seed, spread, soft=True, sharpness=sharpness) for seed in range(seeds)]
        cases.extend(run_case(runs, spread, target, label) for target in TARGETS)
    return {
        "essays": ESSAYS,
        "seeds": seeds,
        "budget_per_essay": BUDGET_PER_ESSAY,
        "position_bias": POSITION_BIAS,
        "judge": (
            f"pairing.SoftJudge: latent = ability difference + {POSITION_BIAS} + N(0, "
            f"{SOFT_NOISE}^2), stated probability sigmoid(sharpness * latent), hard verdict its "
            f"choice (probability > 1/2); sharpness 1, overconfident {OVERCONFIDENT_SHARPNESS}"
        ),
        "stop_reliability": STOP_RELIABILITY,
        "min_comparisons_per_essay": MIN_PER_ESSAY,
        "targets": {
            "claim_within": HONESTY_MARGIN,
            "claim_within_overconfident": OVERCONFIDENT_HONESTY_MARGIN,
            "miss_margin": MISS_MARGIN,
            "max_share_of_budget_at_target_0.9": MAX_SPENT_SHARE,
        },
        "cases": cases,
        "oracle_curves": curves,
        "noise": noise,
        "soft": soft,
    }
