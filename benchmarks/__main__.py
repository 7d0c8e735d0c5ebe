"""`python -m benchmarks` (`make bench`): run every benchmark suite in turn."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

SUITES = ["benchmarks.cj", "benchmarks.llm_provider", "benchmarks.fleet", "benchmarks.tracing"]


def main() -> int:
    """Run each suite that exists as its own process; fail if any fails."""
    failures = 0
    for suite in SUITES:
        if importlib.util.find_spec(suite) is None:
            print(f"bench: {suite} not present, skipped", flush=True)
            continue
        print(f"bench: running {suite}", flush=True)
        failures += subprocess.run([sys.executable, "-m", suite], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
