"""`large_batch`: 3,000 essays end to end, full length by essay-set upload beside short inline.

Both cases run the real stack the way an upstream does (`service_batches.run_service_batch`):
the CJ and LLM provider services as processes (the offline heuristic judge answers at once),
the CLI's `run_cj_batch` publishing the request and waiting for the completed event. The
reference is 3,000 short essays (about 12 words) sent inline; the measured case is 3,000
essays of about 600 words (≈ 11 MB of request JSON, over the broker's 1 MB message limit),
which the CLI uploads to the CJ service and sends by reference. Same budget (10 comparisons per
essay: 30,000), fresh service processes and database per case, so the CJ process's peak RSS
(VmHWM), loop lag and rebalances belong to that case alone. The reliability target (0.99999) is
out of reach, so both spend the whole budget with the stop rule's checks running.

`python -m benchmarks.cj large_batch` runs only this benchmark and updates its key in
benchmarks/results/cj.json; `python -m benchmarks.cj` runs it with the others.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from benchmarks.cj.service_batches import BatchShape, run_service_batch
from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack
from huleedu_cli.essay_upload import INLINE_REQUEST_LIMIT_BYTES

ESSAYS = 3000
COMPARISONS_PER_ESSAY = 10
FULL_WORDS = 600
SHORT_WORDS = 12
TARGET_RELIABILITY = 0.99999


async def run(stack: BenchStack) -> dict[str, Any]:
    """The reference (short, inline) and the measured case (full length, by reference)."""
    result: dict[str, Any] = {
        "inline_limit_bytes": INLINE_REQUEST_LIMIT_BYTES,
        "broker_message_limit_bytes": 1_048_588,
    }
    for name, words in (
        ("reference_short_inline", SHORT_WORDS),
        ("full_length_by_reference", FULL_WORDS),
    ):
        shape = BatchShape(
            essays=ESSAYS,
            words=words,
            budget=COMPARISONS_PER_ESSAY * ESSAYS,
            target_reliability=TARGET_RELIABILITY,
        )
        case = await run_service_batch(stack, shape, label="large")
        result[name] = case
        print(
            f"bench: large_batch {name}: {case['essays']} essays x {case['words_per_essay']} "
            f"words ({case['inline_request_bytes'] / 1e6:.2f} MB inline, "
            f"{'by reference' if case['sent_by_reference'] else 'inline'}), "
            f"{case['completed_comparisons']} comparisons in {case['waves']} planning steps: "
            f"{case['wall_seconds']} s ({case['comparisons_per_second']}/s), CJ peak RSS "
            f"{case['cj_peak_rss_mb']} MB, max loop lag {case['max_event_loop_lag_seconds']} s, "
            f"rebalances {case['consumer_rebalances']}, completed event "
            f"{case['completed_event_bytes'] / 1e3:.0f} kB "
            f"({case['completed_event_gzip_bytes'] / 1e3:.0f} kB gzip)",
            flush=True,
        )
    return result


def main() -> int:
    """Run only this benchmark and update its key in results/cj.json."""
    with bench_stack() as stack:
        figures = asyncio.run(run(stack))
    path = RESULTS_DIR / "cj.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["large_batch"] = figures
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: large_batch written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
