"""`python -m benchmarks.cj [name ...]`: the CJ benchmarks (all, or the ones named); figures
printed and written to results/cj.json (a run of some keeps the others' last figures)."""

from __future__ import annotations

import asyncio
import json
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from benchmarks.cj import (
    bias,
    bt_fit,
    large_batch,
    pairing,
    scaling,
    secured_batch,
    stopping,
    teachers,
    throughput,
)
from benchmarks.cj.latency import latency_benchmark
from benchmarks.cj.stack_benchmarks import callbacks_benchmark, monitor_benchmark
from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack
from common_core.runtime.blas_threads import limit_blas_threads
from common_core.runtime.logging import configure_logging

SIMULATIONS: dict[str, Callable[[], Any]] = {
    "bt_fit": bt_fit.run,
    "pairing": pairing.run,
    "bias": bias.run,
    "stopping": stopping.run,
    "scaling": scaling.run,
    "teachers": teachers.run,
}
ON_THE_STACK: dict[str, Callable[[BenchStack], Any]] = {
    "callbacks": lambda stack: asyncio.run(callbacks_benchmark(stack)),
    "monitor": lambda stack: asyncio.run(monitor_benchmark(stack)),
    "latency": lambda stack: asyncio.run(latency_benchmark(stack)),
    "large_batch": lambda stack: asyncio.run(large_batch.run(stack)),
    "throughput": lambda stack: asyncio.run(throughput.run(stack)),
    "secured": lambda stack: asyncio.run(secured_batch.run(stack)),
}


def main(names: list[str]) -> int:
    """Run the benchmarks (all when `names` is empty) and write their figures."""
    unknown = sorted(set(names) - set(SIMULATIONS) - set(ON_THE_STACK))
    if unknown:
        print(f"unknown CJ benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = names or [*SIMULATIONS, *ON_THE_STACK]
    path = RESULTS_DIR / "cj.json"
    results: dict[str, Any] = json.loads(path.read_text()) if names and path.exists() else {}
    results["measured_at"] = datetime.now(UTC).isoformat()
    results["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
    # Service log lines (one per failed batch, say) go through structlog as in production, but
    # at WARNING so the figures are not interleaved with thousands of lines.
    configure_logging("benchmarks", "WARNING")
    limit_blas_threads()  # as the service process does
    for name in (n for n in chosen if n in SIMULATIONS):
        results[name] = SIMULATIONS[name]()
    stacked = [n for n in chosen if n in ON_THE_STACK]
    if stacked:
        with bench_stack() as stack:
            for name in stacked:
                results[name] = ON_THE_STACK[name](stack)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: CJ results written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
