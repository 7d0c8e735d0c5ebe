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

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common_core.testing.schemathesis import TESTED_PHASES, run_schemathesis
from submission_service.testing.harness import (
    user_token,
)
from submission_service.testing.process import process_env, service_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAX_EXAMPLES_PER_OPERATION = 25
SEED = 20261201


@pytest.fixture(scope="module")
async def service_url(
    database_url: str, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    env = process_env(database_url, kafka_bootstrap_servers)
    async with service_process(env, tmp_path_factory.mktemp("submission")) as service:
        yield service.url


def test_api_passes_every_schemathesis_check(service_url: str, tmp_path: Path) -> None:
    headers = [
        f"Authorization: Bearer {user_token('schemathesis-user')}",
        f"X-Anonymous-Token: {uuid.uuid4()}",
    ]
    run = run_schemathesis(
        service_url,
        tmp_path,
        seed=SEED,
        max_examples=MAX_EXAMPLES_PER_OPERATION,
        headers=headers,
    )
    console, report = run.console, run.report

    assert run.returncode == 0, console
    assert report, console
    assert report["failures"] == [], console
    assert report["errors"] == [], console
    assert report["operations"]["tested"] == report["operations"]["total"] >= 11
    assert {phase: report["phases"][phase]["status"] for phase in TESTED_PHASES} == dict.fromkeys(
        TESTED_PHASES, "success"
    )
