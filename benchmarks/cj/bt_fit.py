"""`bt_fit`: our Bradley-Terry fit (with standard errors) against choix `ilsr_pairwise`."""

from __future__ import annotations

import statistics
import time
from typing import Any

import choix
import numpy as np
from scipy.stats import spearmanr

from cj_assessment_service.domain.bradley_terry import Comparisons, fit_bradley_terry

# choix's ILSR solves a dense n x n linear system per iteration; at 10k essays that is hours.
CHOIX_MAX_ESSAYS = 2000


def simulate(n: int, m: int, seed: int) -> tuple[Comparisons, np.ndarray]:
    """Random pairs judged by a Bradley-Terry judge with known abilities."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 1.5, n)
    a = rng.integers(0, n, m)
    b = (a + rng.integers(1, n, m)) % n
    a_won = rng.random(m) < 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
    return Comparisons(n, a, b, a_won), theta


def _timed(fn: Any, repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def run_case(n: int, m: int, seed: int = 0) -> dict[str, Any]:
    """Time both fits on one simulated data set and compare their accuracy."""
    comparisons, truth = simulate(n, m, seed)
    ours_s, fit = _timed(lambda: fit_bradley_terry(comparisons), repeats=5)
    case: dict[str, Any] = {
        "essays": n,
        "comparisons": m,
        "ours_seconds": round(ours_s, 4),
        "ours_includes_standard_errors": True,
        "ours_spearman": round(float(spearmanr(fit.scores, truth)[0]), 4),
    }
    if n <= CHOIX_MAX_ESSAYS:
        data = [
            (int(x), int(y)) if won else (int(y), int(x))
            for x, y, won in zip(
                comparisons.essay_a, comparisons.essay_b, comparisons.a_won, strict=True
            )
        ]
        choix_s, estimate = _timed(lambda: choix.ilsr_pairwise(n, data, alpha=0.01), repeats=3)
        case.update(
            choix_seconds=round(choix_s, 4),
            choix_spearman=round(float(spearmanr(estimate, truth)[0]), 4),
            speedup=round(choix_s / ours_s, 1),
        )
    else:
        case["choix_seconds"] = None
        case["choix_note"] = f"not run above {CHOIX_MAX_ESSAYS} essays (dense solve per iteration)"
    return case


def run() -> dict[str, Any]:
    """Both sizes from the issue."""
    cases = [run_case(1_000, 10_000), run_case(10_000, 100_000)]
    for case in cases:
        line = (
            f"bt_fit {case['essays']}/{case['comparisons']}: ours {case['ours_seconds']:.3f}s "
            f"(rho {case['ours_spearman']:.3f})"
        )
        if case.get("choix_seconds") is not None:
            line += (
                f", choix ilsr {case['choix_seconds']:.3f}s (rho {case['choix_spearman']:.3f}), "
                f"{case['speedup']}x faster"
            )
        print(line, flush=True)
    return {"cases": cases, "targets": {"speedup_1k": 15, "seconds_10k": 0.5}}
