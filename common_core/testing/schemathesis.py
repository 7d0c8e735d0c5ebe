"""Running schemathesis's CLI (`st run`, every check, every mode) against a service under test,
as a developer would; the CLI's own report, with curl reproductions, is the assertion message."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTED_PHASES = ("coverage", "fuzzing", "stateful")
# A bound on a stuck run, not a speed assertion.
RUN_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class SchemathesisRun:
    """The exit code, console output and JSON report of one `st run`."""

    returncode: int
    console: str
    report: dict[str, Any]


def run_schemathesis(
    base_url: str,
    workdir: Path,
    *,
    seed: int,
    max_examples: int,
    headers: Sequence[str] = (),
    options: Sequence[str] = (),
) -> SchemathesisRun:
    """`st run` on `<base_url>/openapi.json` with `--checks=all --mode=all`, the examples phase
    and `TESTED_PHASES`, a fixed seed and budget, `headers` (`Name: value`) on every call and
    further `st run` `options`."""
    report = workdir / "report.json"
    output = workdir / "output.txt"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base_url}/openapi.json",
        "--checks=all",
        "--mode=all",
        f"--phases=examples,{','.join(TESTED_PHASES)}",
        f"--max-examples={max_examples}",
        f"--seed={seed}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=30",
        "--no-color",
        "--report=json",
        f"--report-json-path={report}",
        *(f"--header={header}" for header in headers),
        *options,
    ]
    with output.open("w") as sink:
        # Its own directory: schemathesis keeps caches in the working directory.
        process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
            command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            returncode = process.wait(timeout=RUN_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)
    console = output.read_text(errors="replace")
    document = json.loads(report.read_text()) if report.exists() else {}
    return SchemathesisRun(returncode, console, document)
