"""`teachers`: simulated teachers beside the simulated AI judge in one batch; the erratic
teacher flagged by misfit, the AI-human agreement interval's coverage, and the ranking's
accuracy with 10 % human verdicts against the AI alone.

The batch is the service's design: the AI is asked its whole budget (planned as the service
plans it), and the teachers' pairs come on top of it, 10 % of all the comparisons, chosen by the
service's own rule (`domain/human_pairs.py`: half the closest pairs of the AI's fit when the AI
has answered as many pairs as there are essays, half stratified over its gaps) and dealt to the
teachers in turn. The reference, the AI alone, is the same batch's AI verdicts."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from benchmarks.cj.pairing import ESSAYS, Judge, Pairs, planned_design
from cj_assessment_service.domain.bradley_terry import (
    Comparisons,
    FloatArray,
    IntArray,
    fit_bradley_terry,
)
from cj_assessment_service.domain.human_pairs import (
    assign_judges,
    choose_human_pairs,
    human_pair_count,
)
from cj_assessment_service.domain.judge_fit import (
    ai_human_agreement,
    fit_human_and_ai,
    judge_misfit,
)

SPREAD = 1.5
AI_BIAS = 0.3
PER_ESSAY = 20
HUMAN_SHARE = 0.1
TEACHERS = 5
ERRATIC = "teacher-5"
# A teacher's logit is this share of the AI's (the AI is the truth's Bradley-Terry judge):
# at 0.6 a teacher picks the better of two essays 1 logit apart 65 % of the time where the AI
# does 73 %; at 1.0 teachers are as sharp as the AI (the scenario that separates the cost of
# their noise from the cost of their pairs being random rather than planned).
TEACHER_DISCRIMINATIONS = (0.6, 1.0)
TEACHER_BIAS = 0.1
# The erratic teacher reverses its verdict on a random half of its pairs (so it is a coin).
ERRATIC_RANDOM_SHARE = 1.0
SEEDS = 16


class Teachers:
    """TEACHERS simulated teachers judging the essays of a simulated AI judge (`Judge`, whose
    abilities are the truth): a teacher picks A with probability sigmoid(discrimination *
    (theta_A - theta_B) + TEACHER_BIAS); the erratic one tosses a coin instead on
    ERRATIC_RANDOM_SHARE of its pairs."""

    def __init__(self, ai: Judge, rng: np.random.Generator, discrimination: float) -> None:
        self.theta = ai.theta
        self.rng = rng
        self.discrimination = discrimination

    def probability_a(self, name: str, a: IntArray, b: IntArray) -> FloatArray:
        """The probability that teacher `name` picks essay A of each pair."""
        gap = self.discrimination * (self.theta[a] - self.theta[b]) + TEACHER_BIAS
        p = 1.0 / (1.0 + np.exp(-gap))
        if name == ERRATIC:
            p = ERRATIC_RANDOM_SHARE * 0.5 + (1.0 - ERRATIC_RANDOM_SHARE) * p
        return np.asarray(p, dtype=np.float64)

    def judge(self, pairs: Pairs, names: list[str]) -> tuple[list[bool], FloatArray]:
        """Verdicts (A won) of the teacher `names[k]` on pair k, and the probability with which
        that teacher picks A."""
        a = np.array([p[0] for p in pairs], dtype=np.int64)
        b = np.array([p[1] for p in pairs], dtype=np.int64)
        p = np.empty(len(pairs))
        for name in set(names):
            mine = np.array([n == name for n in names])
            p[mine] = self.probability_a(name, a[mine], b[mine])
        return list(self.rng.random(len(pairs)) < p), p


def _comparisons(pairs: Pairs, wins: list[bool]) -> Comparisons:
    return Comparisons.from_lists(ESSAYS, [a for a, _ in pairs], [b for _, b in pairs], wins)


def ai_alone(seed: int) -> float:
    """Spearman with the truth of a batch judged by the AI alone (the same essays, budget and
    verdicts as `simulate_batch`'s AI)."""
    alone = Judge(np.random.default_rng(seed + 10_000), AI_BIAS, SPREAD)
    pairs, wins, _ = planned_design(alone, ESSAYS * PER_ESSAY // 2, np.random.default_rng(seed))
    fit = fit_bradley_terry(_comparisons(pairs, wins), with_standard_errors=False)
    return float(spearmanr(fit.scores, alone.theta)[0])


def teachers_pairs(ai_pairs: Pairs, ai_wins: list[bool], rng: np.random.Generator) -> Pairs:
    """The teachers' pairs as the service chooses them: from a fit of the AI's first ESSAYS
    answers (when the service gives people their share), never an orientation the AI asks."""
    early = fit_bradley_terry(_comparisons(ai_pairs[:ESSAYS], ai_wins[:ESSAYS]))
    assert early.standard_errors is not None
    count = human_pair_count(len(ai_pairs), HUMAN_SHARE)
    return choose_human_pairs(early.scores, early.standard_errors, ai_pairs, count, rng)


def simulate_batch(seed: int, discrimination: float) -> dict[str, Any]:
    """One batch judged by the AI on its whole budget, planned as the service plans it, and by
    the teachers on HUMAN_SHARE of all its comparisons on top (the service's rule)."""
    budget = ESSAYS * PER_ESSAY // 2
    ai = Judge(np.random.default_rng(seed + 10_000), AI_BIAS, SPREAD)
    ai_pairs, ai_wins, _ = planned_design(ai, budget, np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 20_000)
    teachers = Teachers(ai, rng, discrimination)
    human_pairs = teachers_pairs(ai_pairs, ai_wins, rng)
    human_judges = assign_judges(human_pairs, [f"teacher-{k + 1}" for k in range(TEACHERS)])
    human_wins, p_a = teachers.judge(human_pairs, human_judges)
    pairs, wins = [*ai_pairs, *human_pairs], [*ai_wins, *human_wins]
    comparisons = _comparisons(pairs, wins)
    judges = ["ai"] * len(ai_pairs) + human_judges
    human = np.array([j != "ai" for j in judges])
    joint = fit_human_and_ai(comparisons, human)
    misfit = {m.judge: m for m in judge_misfit(comparisons, joint, judges, human)}
    ai_fit = fit_bradley_terry(comparisons.subset(~human), with_standard_errors=False)
    report = ai_human_agreement(comparisons, human, judges, ai_fit=ai_fit)
    assert report is not None
    # The agreement's truths: the mean over the human decisions of the probability that the
    # teacher picks the essay the AI-only fit scores higher (the interval's estimand), and the
    # essay the true abilities rank higher.
    a, b = comparisons.essay_a[human], comparisons.essay_b[human]
    ai_order = ai_fit.scores[a] > ai_fit.scores[b]
    true_order = ai.theta[a] > ai.theta[b]
    truth_ai = float(np.mean(np.where(ai_order, p_a, 1.0 - p_a)))
    truth_true = float(np.mean(np.where(true_order, p_a, 1.0 - p_a)))
    flagged = {name for name, m in misfit.items() if m.flagged}
    kept = ~np.isin(np.asarray(judges), sorted(flagged))
    without_flagged = fit_human_and_ai(comparisons.subset(kept), human[kept])
    assert joint.position_biases is not None
    return {
        "human_decisions": report.decisions,
        "misfit": misfit,
        "agreement": report.agreement,
        "interval": (report.low, report.high),
        "truth_ai_order": truth_ai,
        "truth_true_order": truth_true,
        "rho_with_teachers": float(spearmanr(joint.scores, ai.theta)[0]),
        "rho_without_flagged": float(spearmanr(without_flagged.scores, ai.theta)[0]),
        "position_biases": (float(joint.position_biases[0]), float(joint.position_biases[1])),
    }


def _mean_and_error(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values)
    return float(array.mean()), float(array.std(ddof=1) / np.sqrt(array.shape[0]))


def run(seeds: int = SEEDS) -> dict[str, Any]:
    """Both teacher discriminations over the same seeds, beside the AI alone."""
    alone = [ai_alone(seed) for seed in range(seeds)]
    return {
        "essays": ESSAYS,
        "ability_sd": SPREAD,
        "comparisons_per_essay": PER_ESSAY,
        "human_share": HUMAN_SHARE,
        "teachers": TEACHERS,
        "erratic_random_share": ERRATIC_RANDOM_SHARE,
        "seeds": seeds,
        "flag_rule": "infit > 1.3 and standardised infit > 2",
        "spearman_ai_alone": round(float(np.mean(alone)), 4),
        "scenarios": [run_scenario(seeds, d, alone) for d in TEACHER_DISCRIMINATIONS],
    }


def run_scenario(seeds: int, discrimination: float, alone: list[float]) -> dict[str, Any]:
    """Simulate `seeds` batches with teachers of this discrimination; print and return the
    figures (`alone`: the AI-alone Spearman of each seed)."""
    batches = [
        {**simulate_batch(seed, discrimination), "rho_ai_alone": alone[seed]}
        for seed in range(seeds)
    ]
    names = [f"teacher-{i}" for i in range(1, TEACHERS + 1)]
    flag_rate = {
        name: float(np.mean([b["misfit"][name].flagged for b in batches if name in b["misfit"]]))
        for name in names
    }
    mean_infit = {
        name: float(np.mean([b["misfit"][name].infit for b in batches if name in b["misfit"]]))
        for name in [*names, "ai"]
    }
    ai_flags = float(np.mean([b["misfit"]["ai"].flagged for b in batches]))
    honest = [n for n in names if n != ERRATIC]
    honest_rate = float(np.mean([flag_rate[n] for n in honest]))
    covered_ai = float(
        np.mean([b["interval"][0] <= b["truth_ai_order"] <= b["interval"][1] for b in batches])
    )
    covered_true = float(
        np.mean([b["interval"][0] <= b["truth_true_order"] <= b["interval"][1] for b in batches])
    )
    agreement, _ = _mean_and_error([b["agreement"] for b in batches])
    truth_true, _ = _mean_and_error([b["truth_true_order"] for b in batches])
    truth_ai, _ = _mean_and_error([b["truth_ai_order"] for b in batches])
    width, _ = _mean_and_error([b["interval"][1] - b["interval"][0] for b in batches])
    rho_teachers, _ = _mean_and_error([b["rho_with_teachers"] for b in batches])
    rho_kept, _ = _mean_and_error([b["rho_without_flagged"] for b in batches])
    rho_alone, _ = _mean_and_error([b["rho_ai_alone"] for b in batches])
    difference, difference_error = _mean_and_error(
        [b["rho_with_teachers"] - b["rho_ai_alone"] for b in batches]
    )
    kept_difference, kept_error = _mean_and_error(
        [b["rho_without_flagged"] - b["rho_ai_alone"] for b in batches]
    )
    decisions = float(np.mean([b["human_decisions"] for b in batches]))
    ai_bias, ai_bias_error = _mean_and_error([b["position_biases"][0] for b in batches])
    human_bias, human_bias_error = _mean_and_error([b["position_biases"][1] for b in batches])
    print(
        f"teachers ({ESSAYS} essays, ability sd {SPREAD}, planner to {PER_ESSAY} comparisons/"
        f"essay, and {HUMAN_SHARE:.0%} of all comparisons on top to {TEACHERS} teachers at "
        f"{discrimination}x the AI's logit, {ERRATIC} a coin on {ERRATIC_RANDOM_SHARE:.0%} of "
        f"its pairs, {seeds} seeds; "
        f"{decisions:.0f} human decisions per batch):\n"
        f"  misfit flags (infit > 1.3 and z > 2): {ERRATIC} in {flag_rate[ERRATIC]:.0%} of "
        f"batches; honest teachers {honest_rate:.1%} (each: "
        + " ".join(f"{n}:{flag_rate[n]:.0%}" for n in honest)
        + f"); the AI {ai_flags:.0%}\n  mean infit: "
        + " ".join(f"{n}:{mean_infit[n]:.2f}" for n in [*names, "ai"])
        + f"\n  AI-human agreement {agreement:.3f} (mean 95 % Wilson width {width:.3f}); "
        f"covers the truth at the AI's order ({truth_ai:.3f}) in {covered_ai:.0%} of batches, "
        f"at the true order ({truth_true:.3f}) in {covered_true:.0%}\n"
        f"  Spearman with the truth: AI alone {rho_alone:.4f} (reference); with the teachers as "
        f"the service ranks (flagged teachers left out) {rho_kept:.4f} (difference "
        f"{kept_difference:+.4f} +- {kept_error:.4f}); every teacher kept {rho_teachers:.4f} "
        f"({difference:+.4f} +- {difference_error:.4f})\n"
        f"  order effects (true AI {AI_BIAS}, teachers {TEACHER_BIAS}): fitted AI {ai_bias:.3f} +- "
        f"{ai_bias_error:.3f}, teachers {human_bias:.3f} +- {human_bias_error:.3f}",
        flush=True,
    )
    return {
        "teacher_discrimination": discrimination,
        "human_decisions_per_batch": round(decisions, 1),
        "erratic_flag_rate": round(flag_rate[ERRATIC], 3),
        "honest_teacher_flag_rate": round(honest_rate, 3),
        "ai_flag_rate": round(ai_flags, 3),
        "mean_infit": {n: round(v, 3) for n, v in mean_infit.items()},
        "agreement": round(agreement, 4),
        "mean_interval_width": round(width, 4),
        "truth_at_ai_order": round(truth_ai, 4),
        "truth_at_true_order": round(truth_true, 4),
        "coverage_at_ai_order": round(covered_ai, 3),
        "coverage_at_true_order": round(covered_true, 3),
        "spearman_as_the_service_ranks": round(rho_kept, 4),
        "spearman_as_the_service_ranks_difference": round(kept_difference, 4),
        "spearman_as_the_service_ranks_difference_standard_error": round(kept_error, 4),
        "spearman_with_teachers": round(rho_teachers, 4),
        "spearman_difference": round(difference, 4),
        "spearman_difference_standard_error": round(difference_error, 4),
        "spearman_flagged_left_out": round(rho_kept, 4),
        "spearman_flagged_left_out_difference": round(kept_difference, 4),
        "position_bias_ai": round(ai_bias, 4),
        "position_bias_teachers": round(human_bias, 4),
    }
