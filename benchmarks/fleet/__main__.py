"""`python -m benchmarks.fleet [name ...]`: the scale-out benchmarks (all, or the ones named),
several service instances on one broker and one database; figures printed beside the
single-instance figure of the same run and written to results/fleet.json (a run of some keeps
the others' last figures).

- `llm_scaleout`: CJ batch throughput with 1, 2 and 3 LLM provider instances at a latency-bound
  load (`llm_scaleout.py`);
- `cj_callbacks`: callback throughput with 1 and 2 CJ instances (`cj_callbacks.py`).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from benchmarks.fleet import cj_callbacks, llm_scaleout
from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack
from common_core.runtime.logging import configure_logging

BENCHMARKS: dict[str, Callable[[BenchStack], Coroutine[Any, Any, dict[str, Any]]]] = {
    "llm_scaleout": llm_scaleout.run,
    "cj_callbacks": cj_callbacks.run,
}


def main(names: list[str]) -> int:
    """Run the benchmarks (all when `names` is empty) and write their figures."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"unknown fleet benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    path = RESULTS_DIR / "fleet.json"
    results: dict[str, Any] = json.loads(path.read_text()) if names and path.exists() else {}
    results["measured_at"] = datetime.now(UTC).isoformat()
    results["machine"] = {
        "python": platform.python_version(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
    }
    configure_logging("benchmarks.fleet", "WARNING")
    with bench_stack() as stack:
        for name in names or list(BENCHMARKS):
            results[name] = asyncio.run(BENCHMARKS[name](stack))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: fleet results written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
