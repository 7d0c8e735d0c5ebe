"""`pairing`: comparisons per essay our planner needs vs random pairing for the same accuracy."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import plan_opening_pairs, plan_top_up, top_up_size
from cj_assessment_service.domain.bradley_terry import Comparisons, fit_bradley_terry

ESSAYS = 100
MAX_PER_ESSAY = 24
CHECKPOINTS = list(range(2, MAX_PER_ESSAY + 1, 2))
# Called as the service calls the planner, with its default settings.
MAX_PAIRS_PER_STEP: int = Settings.model_fields["max_pairs_per_step"].default
COMPARISONS_PER_ESSAY: int = Settings.model_fields["default_comparisons_per_essay"].default
TARGET_OUTSTANDING: int = Settings.model_fields["target_outstanding_comparisons"].default
REFILL_STEP: int = Settings.model_fields["refit_every_answers"].default


class Judge:
    """A simulated Bradley-Terry judge with known abilities and an optional order effect."""

    def __init__(self, rng: np.random.Generator, bias: float, spread: float) -> None:
        self.theta = rng.normal(0.0, spread, ESSAYS)
        self.bias = bias
        self.rng = rng

    def judge(self, pairs: list[tuple[int, int]]) -> list[bool]:
        """Whether essay A won, for each ordered pair."""
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        prob = 1.0 / (1.0 + np.exp(-(self.theta[a] - self.theta[b] + self.bias)))
        return list(self.rng.random(len(pairs)) < prob)


def _accuracy(judge: Judge, pairs: list[tuple[int, int]], wins: list[bool]) -> float:
    comparisons = Comparisons.from_lists(ESSAYS, [p[0] for p in pairs], [p[1] for p in pairs], wins)
    fit = fit_bradley_terry(comparisons, with_standard_errors=False)
    return float(spearmanr(fit.scores, judge.theta)[0])


Pairs = list[tuple[int, int]]
# Called after each batch of answers with the answered design; True stops the batch.
AfterAnswers = Callable[[Pairs, list[bool]], bool]
# Answer times of the simulated judge (lognormal, median 1 s): they only set the order in which
# answers come back, which is what continuous planning reacts to.
LATENCY_SIGMA = 0.5


def planned_design(
    judge: Judge,
    budget: int,
    rng: np.random.Generator,
    after_answers: AfterAnswers | None = None,
) -> tuple[Pairs, list[bool]]:
    """A batch planned as the service plans it, judged by `judge`: the opening pairs, then
    top-ups that keep TARGET_OUTSTANDING comparisons in flight, planned on a refit of the
    answers so far whenever REFILL_STEP answers have come back; answers arrive in the order of
    simulated latencies. Returns the answered design (at the budget or when `after_answers`
    says stop)."""
    asked: Pairs = []
    answered: Pairs = []
    wins: list[bool] = []
    in_flight: list[tuple[float, int]] = []
    clock = 0.0

    def ask(new: Pairs) -> None:
        for pair in new:
            heapq.heappush(
                in_flight, (clock + float(rng.lognormal(0.0, LATENCY_SIGMA)), len(asked))
            )
            asked.append(pair)

    ask(
        plan_opening_pairs(
            ESSAYS,
            budget,
            comparisons_per_essay=COMPARISONS_PER_ESSAY,
            max_pairs_per_step=MAX_PAIRS_PER_STEP,
            rng=rng,
        )
    )
    while in_flight:
        clock, index = heapq.heappop(in_flight)
        answered.append(asked[index])
        wins.extend(judge.judge([asked[index]]))
        if after_answers is not None and after_answers(answered, wins):
            break
        count = top_up_size(
            budget=budget,
            planned=len(asked),
            pending=len(in_flight),
            target_outstanding=TARGET_OUTSTANDING,
            refill_step=REFILL_STEP,
        )
        if count == 0:
            continue
        comparisons = Comparisons.from_lists(
            ESSAYS, [p[0] for p in answered], [p[1] for p in answered], wins
        )
        fit = fit_bradley_terry(comparisons)
        assert fit.standard_errors is not None
        ask(plan_top_up(fit.scores, fit.standard_errors, asked, count, rng=rng))
    return answered, wins


def curve_planner(seed: int, bias: float, spread: float) -> dict[int, float]:
    """Spearman with the truth at each checkpoint, pairs chosen by our planner."""
    judge = Judge(np.random.default_rng(seed + 10_000), bias, spread)
    curve: dict[int, float] = {}

    def checkpoint(pairs: Pairs, wins: list[bool]) -> bool:
        if (2 * len(pairs)) % ESSAYS == 0 and 2 * len(pairs) // ESSAYS in CHECKPOINTS:
            curve[2 * len(pairs) // ESSAYS] = _accuracy(judge, pairs, wins)
        return False

    planned_design(
        judge, ESSAYS * MAX_PER_ESSAY // 2, np.random.default_rng(seed), after_answers=checkpoint
    )
    return curve


def curve_random(seed: int, bias: float, spread: float) -> dict[int, float]:
    """Spearman with the truth at each checkpoint, pairs drawn at random (no repeats)."""
    rng = np.random.default_rng(seed)
    judge = Judge(np.random.default_rng(seed + 10_000), bias, spread)
    all_pairs = [(i, j) for i in range(ESSAYS) for j in range(ESSAYS) if i != j]
    order = rng.permutation(len(all_pairs))
    curve: dict[int, float] = {}
    for per_essay in CHECKPOINTS:
        pairs = [all_pairs[k] for k in order[: ESSAYS * per_essay // 2]]
        curve[per_essay] = _accuracy(judge, pairs, judge.judge(pairs))
    return curve


def _needed(curve: dict[int, float], target: float) -> float | None:
    """Comparisons per essay to reach `target` (linear between checkpoints)."""
    previous_k, previous_r = 0, 0.0
    for k in sorted(curve):
        r = curve[k]
        if r >= target:
            if k == previous_k or r == previous_r:
                return float(k)
            return previous_k + (target - previous_r) * (k - previous_k) / (r - previous_r)
        previous_k, previous_r = k, r
    return None


def run_scenario(seeds: int, bias: float, spread: float) -> dict[str, Any]:
    """Average curves over seeds; compare at random pairing's accuracy after 20 per essay."""
    planner = [curve_planner(s, bias, spread) for s in range(seeds)]
    random = [curve_random(s, bias, spread) for s in range(seeds)]
    points = [k for k in CHECKPOINTS if all(k in c for c in planner)]
    mean_planner = {k: float(np.mean([c[k] for c in planner])) for k in points}
    mean_random = {k: float(np.mean([c[k] for c in random])) for k in CHECKPOINTS}
    reference_k = 20
    target = mean_random[reference_k]
    planner_needed = _needed(mean_planner, target)
    ratio = planner_needed / reference_k if planner_needed is not None else None
    print(
        f"pairing ({ESSAYS} essays, ability sd {spread}, position bias {bias}, {seeds} seeds): "
        f"random pairing reaches rho {target:.4f} at {reference_k} comparisons/essay; our "
        f"planner at {planner_needed if planner_needed is None else round(planner_needed, 1)}"
        f" -> ratio {ratio if ratio is None else round(ratio, 2)} (target <= 0.6)",
        flush=True,
    )
    print(
        "  rho by comparisons/essay  planner: "
        + " ".join(f"{k}:{mean_planner[k]:.3f}" for k in points)
        + "\n                            random:  "
        + " ".join(f"{k}:{mean_random[k]:.3f}" for k in points),
        flush=True,
    )
    return {
        "essays": ESSAYS,
        "seeds": seeds,
        "ability_sd": spread,
        "position_bias": bias,
        "reference_comparisons_per_essay": reference_k,
        "target_spearman": round(target, 4),
        "planner_comparisons_per_essay": None
        if planner_needed is None
        else round(planner_needed, 2),
        "ratio": None if ratio is None else round(ratio, 3),
        "target_ratio": 0.6,
        "planner_curve": {k: round(v, 4) for k, v in mean_planner.items()},
        "random_curve": {k: round(v, 4) for k, v in mean_random.items()},
    }


def run(seeds: int = 32) -> dict[str, Any]:
    """Two ability spreads: a moderate one and a wide one (typical of CJ essay sets).

    32 seeds: over 8 seeds the ratio still moves by about +-0.04 from one set of seeds to the
    next (measured on 128 seeds in blocks of 8), enough to pass or fail a 0.6 target by luck.
    """
    return {
        "scenarios": [
            run_scenario(seeds, bias=0.3, spread=1.5),
            run_scenario(seeds, bias=0.3, spread=2.5),
        ]
    }
