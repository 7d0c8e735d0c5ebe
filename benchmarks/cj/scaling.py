"""`scaling`: the CJ maths from 1,000 to 30,000 essays, and the honesty of its fast estimates.

Random pairs, 10 comparisons per essay, judged by a Bradley-Terry judge (ability sd 1.5, order
effect 0.3 logits). Timed at each size: the stop rule's posterior reliability, a fit with
standard errors, one planning step (a top-up of 500 pairs given every pair asked) and the final
scoring (`score_batch`), each with its growth exponent (the least-squares slope of log time on
log essays: 1 is linear). With human judges beside the AI (a tenth of the verdicts made people's,
five judges): the final scoring (the joint fit, each judge's misfit and the AI-human agreement),
timed beside the AI-only scoring as its reference, and the choice of the people's pairs (a fit of
the AI's answers, then as many pairs as people's verdicts). Beside the posterior reliability, in
the same run where feasible: the method before (kept below as the reference: cold-started fits,
log|H| by dense Cholesky up to 2,000 essays and by sparse LU above, the noise term from the
second-order Neumann standard errors) and the exact figure (dense factorisations throughout).

Accuracy: the stochastic estimate (stochastic Lanczos quadrature, used above
DENSE_LOG_DET_MAX_ESSAYS) against the exact figure at 300, 1,000 and 2,000 essays on a random
design of high reliability, an adaptive design (the service's planner: pairs of close
estimated abilities) and coin flips.
At 300 essays the service computes the exact figure; the stochastic path is forced there to
show its accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import numpy as np
from scipy import linalg, sparse
from scipy.optimize import minimize_scalar
from scipy.sparse.linalg import splu
from scipy.special import expit

from cj_assessment_service.domain import bradley_terry
from cj_assessment_service.domain.batch import plan_opening_pairs, plan_top_up
from cj_assessment_service.domain.bradley_terry import (
    DEFAULT_BIAS_PRIOR_PRECISION,
    Comparisons,
    fit_bradley_terry,
)
from cj_assessment_service.domain.human_pairs import plan_human_pairs_from_answers
from cj_assessment_service.domain.judge_fit import HumanCounts
from cj_assessment_service.domain.scoring import ScoredEssay, score_batch
from cj_assessment_service.domain.stopping import (
    LOG_VARIANCE_TOLERANCE,
    MAX_ABILITY_VARIANCE,
    MIN_ABILITY_VARIANCE,
    posterior_reliability,
)

SIZES = (1_000, 3_000, 10_000, 30_000)
PER_ESSAY = 10
SPREAD = 1.5
ORDER_EFFECT = 0.3
PLAN_PAIRS = 500
# With human judges: the share of the verdicts that are people's, and how many people.
HUMAN_SHARE = 0.1
HUMAN_JUDGES = 5
# Timing repeats per size (the best is kept: the cores are shared).
REPEATS = {1_000: 5, 3_000: 3, 10_000: 2, 30_000: 1}
# The method before takes 17 s at 3,000 essays and grows with the LU's nearly dense fill-in.
PREVIOUS_MAX_ESSAYS = 3_000
EXACT_MAX_ESSAYS = 3_000
ACCURACY_SIZES = (300, 1_000, 2_000)
HONESTY_MARGIN = 0.03
# The method before: a dense Cholesky up to this many essays, a sparse LU above.
PREVIOUS_DENSE_MAX_ESSAYS = 2_000


def random_design(n: int, spread: float, seed: int) -> Comparisons:
    """n * PER_ESSAY / 2 random pairs judged by a Bradley-Terry judge with abilities of sd
    `spread` (0: coin flips, apart from the order effect)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)
    m = n * PER_ESSAY // 2
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + ORDER_EFFECT)))
    return Comparisons(n, a.astype(np.int64), b.astype(np.int64), won)


def planned_design(n: int, spread: float, seed: int) -> Comparisons:
    """An adaptive design as the service plans it: the coverage ring, then top-ups of
    PLAN_PAIRS pairs, each planned on a refit of every answer so far, to PER_ESSAY comparisons
    per essay (pairs of close estimated abilities)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, spread, n)

    def judge(pairs: list[tuple[int, int]]) -> list[bool]:
        a, b = (np.array(side) for side in zip(*pairs, strict=True))
        chance = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b] + ORDER_EFFECT)))
        return [bool(won) for won in rng.random(len(pairs)) < chance]

    budget = n * PER_ESSAY // 2
    asked = plan_opening_pairs(
        n, budget, comparisons_per_essay=PER_ESSAY, max_pairs_per_step=PLAN_PAIRS, rng=rng
    )
    wins = judge(asked)
    while len(asked) < budget:
        fit = fit_bradley_terry(_answered(n, asked, wins))
        assert fit.standard_errors is not None
        more = plan_top_up(
            fit.scores, fit.standard_errors, asked, min(PLAN_PAIRS, budget - len(asked)), rng=rng
        )
        if not more:
            break
        asked += more
        wins += judge(more)
    return _answered(n, asked, wins)


def _answered(n: int, pairs: list[tuple[int, int]], wins: list[bool]) -> Comparisons:
    return Comparisons.from_lists(n, [a for a, _ in pairs], [b for _, b in pairs], wins)


def previous_posterior_reliability(comparisons: Comparisons) -> float | None:
    """The posterior reliability as computed before (main at 82007e6), the reference."""
    n = comparisons.n_essays
    if n < 3 or len(comparisons) == 0:
        return None
    design = _design(comparisons)

    def negative_log_evidence(log_variance: float) -> float:
        precision = np.full(n + 1, math.exp(-log_variance))
        precision[n] = DEFAULT_BIAS_PRIOR_PRECISION
        fit = fit_bradley_terry(
            comparisons, prior_precision=math.exp(-log_variance), with_standard_errors=False
        )
        params = np.append(fit.scores, fit.position_bias)
        eta = design @ params
        likelihood = float(np.sum(np.where(comparisons.a_won, eta, 0.0) - np.logaddexp(0, eta)))
        prob = expit(eta)
        information = (design.T @ sparse.diags(prob * (1.0 - prob)) @ design).tocsc()
        information = information + sparse.diags(precision)
        if n <= PREVIOUS_DENSE_MAX_ESSAYS:
            factor = linalg.cholesky(information.toarray(), lower=True)
            log_det = 2.0 * float(np.sum(np.log(np.diag(factor))))
        else:
            pivots = splu(information.tocsc()).U.diagonal()
            log_det = float(np.sum(np.log(np.abs(pivots))))
        prior = 0.5 * float(np.sum(np.log(precision)) - np.sum(precision * params**2))
        return -(likelihood + prior - 0.5 * log_det)

    result = minimize_scalar(
        negative_log_evidence,
        bounds=(math.log(MIN_ABILITY_VARIANCE), math.log(MAX_ABILITY_VARIANCE)),
        method="bounded",
        options={"xatol": LOG_VARIANCE_TOLERANCE},
    )
    fit = fit_bradley_terry(comparisons, prior_precision=math.exp(-float(result.x)))
    assert fit.standard_errors is not None
    signal = float(np.sum(fit.scores**2))
    noise = float(np.sum(fit.standard_errors**2))
    return float(np.clip(signal / (signal + noise), 0.0, 1.0))


def _design(comparisons: Comparisons) -> sparse.csr_matrix:
    """Rows e_a - e_b plus a 1 in the order-effect column."""
    m, n = len(comparisons), comparisons.n_essays
    rows = np.repeat(np.arange(m), 3)
    columns = np.column_stack([comparisons.essay_a, comparisons.essay_b, np.full(m, n)]).ravel()
    values = np.tile(np.array([1.0, -1.0, 1.0]), m)
    return sparse.csr_matrix((values, (rows, columns)), shape=(m, n + 1))


def _best_time(operation: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = operation()
        best = min(best, time.perf_counter() - start)
    return best, result


def _growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log seconds on log essays."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def time_size(n: int) -> dict[str, Any]:
    """Every operation at one size (and the previous and exact reliabilities where feasible)."""
    comparisons = random_design(n, SPREAD, seed=n)
    repeats = REPEATS[n]
    asked = list(zip(comparisons.essay_a.tolist(), comparisons.essay_b.tolist(), strict=True))
    essays = [ScoredEssay(f"e{i}") for i in range(n)]
    reliability_s, claim = _best_time(lambda: posterior_reliability(comparisons), repeats)
    fit_s, fit = _best_time(lambda: fit_bradley_terry(comparisons), repeats)
    plan_s, planned = _best_time(
        lambda: plan_top_up(
            fit.scores, fit.standard_errors, asked, PLAN_PAIRS, rng=np.random.default_rng(0)
        ),
        repeats,
    )
    scoring_s, _ = _best_time(lambda: score_batch(essays, comparisons), max(1, repeats - 1))
    human, judge_ids = _human_verdicts(len(comparisons), seed=n)
    judged = int(human.sum())
    counts = HumanCounts(HUMAN_JUDGES, judged, judged, 0)
    people_s, with_people = _best_time(
        lambda: score_batch(essays, comparisons, judges=(human, judge_ids), human_counts=counts),
        max(1, repeats - 1),
    )
    human_statistics = with_people.statistics.human_judging
    assert human_statistics is not None
    human_plan_s, human_planned = _best_time(
        lambda: plan_human_pairs_from_answers(
            comparisons.subset(~human), asked, judged, rng=np.random.default_rng(0)
        ),
        repeats,
    )
    case: dict[str, Any] = {
        "essays": n,
        "comparisons": len(comparisons),
        "posterior_reliability_seconds": round(reliability_s, 4),
        "posterior_reliability": round(float(claim), 4),
        "fit_with_standard_errors_seconds": round(fit_s, 4),
        "plan_top_up_seconds": round(plan_s, 4),
        "plan_top_up_pairs": len(planned),
        "score_batch_seconds": round(scoring_s, 4),
        "human_verdicts": judged,
        "score_batch_with_people_seconds": round(people_s, 4),
        "ai_human_agreement": human_statistics.agreement,
        "plan_human_pairs_seconds": round(human_plan_s, 4),
        "plan_human_pairs_pairs": len(human_planned),
    }
    if n <= PREVIOUS_MAX_ESSAYS:
        previous_s, previous = _best_time(lambda: previous_posterior_reliability(comparisons), 1)
        case.update(
            previous_posterior_reliability_seconds=round(previous_s, 4),
            previous_posterior_reliability=round(float(previous), 4),
        )
    if n <= EXACT_MAX_ESSAYS:
        exact_s, exact = _best_time(lambda: posterior_reliability(comparisons, exact=True), 1)
        case.update(exact_posterior_reliability_seconds=round(exact_s, 4))
        case.update(exact_posterior_reliability=round(float(exact), 4))
    return case


def _human_verdicts(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """Which of `count` verdicts are people's (HUMAN_SHARE of them, at random) and who gave
    each (HUMAN_JUDGES people in turn; the AI's are "ai")."""
    rng = np.random.default_rng(seed)
    human = np.zeros(count, dtype=np.bool_)
    human[rng.choice(count, int(HUMAN_SHARE * count), replace=False)] = True
    judge_ids = [f"teacher-{i % HUMAN_JUDGES + 1}" if human[i] else "ai" for i in range(count)]
    return human, judge_ids


def accuracy() -> list[dict[str, Any]]:
    """The stochastic estimate against the exact figure on three designs at each size."""
    designs: dict[str, Callable[[int], Comparisons]] = {
        "random, sd 2.5 (high reliability)": lambda n: random_design(n, 2.5, seed=7),
        "adaptive (the service's planner), sd 1.5": lambda n: planned_design(n, 1.5, seed=7),
        "coin flips": lambda n: random_design(n, 0.0, seed=7),
    }
    rows = []
    for n in ACCURACY_SIZES:
        for name, make in designs.items():
            comparisons = make(n)
            with mock.patch.object(bradley_terry, "DENSE_LOG_DET_MAX_ESSAYS", 0):
                stochastic = posterior_reliability(comparisons)
            exact = posterior_reliability(comparisons, exact=True)
            assert stochastic is not None
            assert exact is not None
            rows.append(
                {
                    "essays": n,
                    "design": name,
                    "stochastic": round(stochastic, 4),
                    "exact": round(exact, 4),
                    "difference": round(stochastic - exact, 4),
                }
            )
    return rows


def run() -> dict[str, Any]:
    """Timings at every size with growth exponents, then the accuracy table."""
    cases = []
    for n in SIZES:
        case = time_size(n)
        cases.append(case)
        line = (
            f"bench: scaling {n} essays / {case['comparisons']} comparisons: posterior "
            f"reliability {case['posterior_reliability_seconds']:.3f}s "
            f"({case['posterior_reliability']:.4f})"
        )
        if "previous_posterior_reliability_seconds" in case:
            line += (
                f" [previous method {case['previous_posterior_reliability_seconds']:.3f}s "
                f"({case['previous_posterior_reliability']:.4f}), exact "
                f"{case['exact_posterior_reliability_seconds']:.3f}s "
                f"({case['exact_posterior_reliability']:.4f})]"
            )
        line += (
            f"; fit+SE {case['fit_with_standard_errors_seconds']:.3f}s; plan_top_up "
            f"{PLAN_PAIRS} {case['plan_top_up_seconds']:.3f}s; score_batch "
            f"{case['score_batch_seconds']:.3f}s; with people ({case['human_verdicts']} of the "
            f"verdicts, {HUMAN_JUDGES} judges) {case['score_batch_with_people_seconds']:.3f}s "
            f"(agreement {case['ai_human_agreement']:.3f}); choosing their pairs "
            f"{case['plan_human_pairs_seconds']:.3f}s"
        )
        print(line, flush=True)
    sizes = [case["essays"] for case in cases]
    exponents = {}
    for operation in (
        "posterior_reliability",
        "fit_with_standard_errors",
        "plan_top_up",
        "score_batch",
        "score_batch_with_people",
        "plan_human_pairs",
    ):
        exponents[operation] = round(
            _growth_exponent(sizes, [case[f"{operation}_seconds"] for case in cases]), 2
        )
    previous = [c for c in cases if "previous_posterior_reliability_seconds" in c]
    if len(previous) > 1:
        exponents["previous_posterior_reliability"] = round(
            _growth_exponent(
                [c["essays"] for c in previous],
                [c["previous_posterior_reliability_seconds"] for c in previous],
            ),
            2,
        )
    print(
        "bench: scaling growth exponents (log-log slope, 1 = linear): "
        + ", ".join(f"{name} {value:.2f}" for name, value in exponents.items()),
        flush=True,
    )
    rows = accuracy()
    for row in rows:
        print(
            f"bench: scaling accuracy {row['essays']} essays, {row['design']}: stochastic "
            f"{row['stochastic']:.4f}, exact {row['exact']:.4f}, "
            f"difference {row['difference']:+.4f}",
            flush=True,
        )
    worst = max(abs(row["difference"]) for row in rows)
    print(
        f"bench: scaling worst |stochastic - exact| {worst:.4f} (target <= {HONESTY_MARGIN})",
        flush=True,
    )
    return {
        "cases": cases,
        "growth_exponents": exponents,
        "accuracy": rows,
        "target": {"max_abs_difference": HONESTY_MARGIN, "met": worst <= HONESTY_MARGIN},
    }
