"""`python -m benchmarks.cj`: every CJ benchmark; figures printed and written to results/cj.json."""

from __future__ import annotations

import asyncio
import json
import platform
from datetime import UTC, datetime

from benchmarks.cj import bias, bt_fit, large_batch, pairing
from benchmarks.cj.stack_benchmarks import callbacks_benchmark, monitor_benchmark
from benchmarks.stack import RESULTS_DIR, bench_stack
from common_core.runtime.blas_threads import limit_blas_threads
from common_core.runtime.logging import configure_logging


def main() -> int:
    """Run the benchmarks and write their figures."""
    results: dict[str, object] = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    # Service log lines (one per failed batch, say) go through structlog as in production, but
    # at WARNING so the figures are not interleaved with thousands of lines.
    configure_logging("benchmarks", "WARNING")
    limit_blas_threads()  # as the service process does
    results["bt_fit"] = bt_fit.run()
    results["pairing"] = pairing.run()
    results["bias"] = bias.run()
    with bench_stack() as stack:
        results["callbacks"] = asyncio.run(callbacks_benchmark(stack))
        results["monitor"] = asyncio.run(monitor_benchmark(stack))
        results["large_batch"] = asyncio.run(large_batch.run(stack))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / "cj.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: CJ results written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
