"""schemathesis, with every one of its checks, against `python -m submission_service`.

`st run` (its CLI, the same run a developer would start) loads `/openapi.json` and goes through
all its phases in positive and negative mode: examples, coverage (boundary values, missing
parameters, undeclared methods, invalid credentials), fuzzing and stateful sequences along the
links it infers between operations. With `--checks all` it fails on any 5xx; any status, header,
content type or body the document does not describe; a schema-valid request rejected or a
schema-invalid one accepted; a missing required header or credentials not refused with 401/403;
an undeclared method without `405` and `Allow`; a created resource not available or a deleted
one still there. Seed and example budget are fixed, so a red run is a real change; the CLI's
own report, with curl reproductions, is the assertion message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from submission_service.testing.harness import (
    user_token,
)
from submission_service.testing.process import process_env, service_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES_PER_OPERATION = 25
SEED = 20261201
# A bound on a stuck run, not a speed assertion: the run takes well under a minute on two cores.
RUN_TIMEOUT_SECONDS = 900
TESTED_PHASES = ("coverage", "fuzzing", "stateful")


@pytest.fixture(scope="module")
async def service_url(
    database_url: str, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    env = process_env(database_url, kafka_bootstrap_servers)
    async with service_process(env, tmp_path_factory.mktemp("submission")) as service:
        yield service.url


def _schemathesis(service_url: str, workdir: Path) -> tuple[int, str, dict[str, Any]]:
    """Run `st run` with every check; its exit code, console output and JSON report."""
    report = workdir / "report.json"
    output = workdir / "output.txt"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{service_url}/openapi.json",
        "--checks=all",
        "--mode=all",
        f"--phases=examples,{','.join(TESTED_PHASES)}",
        f"--max-examples={MAX_EXAMPLES_PER_OPERATION}",
        f"--seed={SEED}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=30",
        "--no-color",
        "--report=json",
        f"--report-json-path={report}",
        f"--header=Authorization: Bearer {user_token('schemathesis-user')}",
        f"--header=X-Anonymous-Token: {uuid.uuid4()}",
    ]
    with output.open("w") as sink:
        # Run in a directory of its own: schemathesis keeps caches in the working directory.
        process = subprocess.Popen(command, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT)
        try:
            returncode = process.wait(timeout=RUN_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=15)
    console = output.read_text(errors="replace")
    run = json.loads(report.read_text()) if report.exists() else {}
    return returncode, console, run


def test_api_passes_every_schemathesis_check(service_url: str, tmp_path: Path) -> None:
    returncode, console, run = _schemathesis(service_url, tmp_path)

    assert returncode == 0, console
    assert run, console
    assert run["failures"] == [], console
    assert run["errors"] == [], console
    assert run["operations"]["tested"] == run["operations"]["total"] >= 11
    assert {phase: run["phases"][phase]["status"] for phase in TESTED_PHASES} == dict.fromkeys(
        TESTED_PHASES, "success"
    )
