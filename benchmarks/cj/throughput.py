"""`throughput`: CJ batches of 100, 1,000 and 10,000 essays through the real services.

Each batch spends a budget of 10 comparisons per essay (10 x essays comparisons, each essay in
20 on average) with the offline heuristic judge, which answers at once, so the services and the
broker set the pace, not a provider. The reliability target (0.99999) is out of reach, so every
batch spends its whole budget while its reliability checks run as they would in production.

Figures per batch: wall time, comparisons per second, the CJ process's peak RSS, its largest
event-loop lag, consumer-group rebalances, log lines about expired heartbeats or sessions, and
the share of the wall time its reliability checks took. The 100-essay batch, run first in the
same run, is the reference: the targets are throughput at 10,000 essays of at least 0.7 of it,
at least 400 comparisons per second at 1,000 essays, a largest loop lag under 0.5 s and no
rebalance.

`python -m benchmarks.cj throughput` runs only this benchmark.
"""

from __future__ import annotations

import os
from typing import Any

from benchmarks.cj.service_batches import BatchShape, run_service_batch
from benchmarks.stack import BenchStack

COMPARISONS_PER_ESSAY = 10
WORDS = 60
TARGET_RELIABILITY = 0.99999
SIZES = (100, 1_000, 10_000)
TARGET_RATIO_AT_10K = 0.7
TARGET_RATE_AT_1K = 400.0
TARGET_MAX_LOOP_LAG = 0.5


async def run(stack: BenchStack) -> dict[str, Any]:
    """The reference batch (100 essays), then 1,000 and 10,000 (BENCH_THROUGHPUT_SIZES
    overrides the sizes, e.g. `100,1000` for a quick look)."""
    sizes = (
        tuple(int(size) for size in os.environ.get("BENCH_THROUGHPUT_SIZES", "").split(",") if size)
        or SIZES
    )
    cases: dict[str, dict[str, Any]] = {}
    for essays in sizes:
        shape = BatchShape(
            essays=essays,
            words=WORDS,
            budget=COMPARISONS_PER_ESSAY * essays,
            target_reliability=TARGET_RELIABILITY,
        )
        case = await run_service_batch(stack, shape, label=f"tp{essays}")
        cases[str(essays)] = case
        print(
            f"bench: throughput {essays} essays: {case['completed_comparisons']} comparisons in "
            f"{case['wall_seconds']} s = {case['comparisons_per_second']}/s, CJ peak RSS "
            f"{case['cj_peak_rss_mb']} MB, CPU s CJ {case['cj_cpu_seconds']} / LLM "
            f"{case['llm_provider_cpu_seconds']}, max loop lag "
            f"{case['max_event_loop_lag_seconds']} s, "
            f"rebalances {case['consumer_rebalances']}, heartbeat/session log lines "
            f"{case['group_trouble_log_lines']}, reliability checks "
            f"{100 * case['reliability_check_share_of_wall']:.1f} % of the wall time, mean "
            f"round trip {case['mean_round_trip_seconds']} s (of which outbox "
            f"{case['mean_outbox_delay_seconds']} s), "
            f"{case['waves']} planning steps ({case['completion_reason']})",
            flush=True,
        )
    reference = cases[str(sizes[0])]["comparisons_per_second"]
    result: dict[str, Any] = {
        "comparisons_per_essay_budget": COMPARISONS_PER_ESSAY,
        "words_per_essay": WORDS,
        "reference_essays": sizes[0],
        "cases": cases,
        "targets": {
            "ratio_at_10k": TARGET_RATIO_AT_10K,
            "comparisons_per_second_at_1k": TARGET_RATE_AT_1K,
            "max_event_loop_lag_seconds": TARGET_MAX_LOOP_LAG,
            "rebalances": 0,
        },
    }
    for case in cases.values():
        case["ratio_to_reference"] = round(case["comparisons_per_second"] / reference, 3)
    if "10000" in cases:
        big = cases["10000"]
        result["ratio_at_10k"] = big["ratio_to_reference"]
        print(
            f"bench: throughput 10,000 essays at {big['ratio_to_reference']:.2f} of the "
            f"{sizes[0]}-essay rate (target {TARGET_RATIO_AT_10K})",
            flush=True,
        )
    return result
