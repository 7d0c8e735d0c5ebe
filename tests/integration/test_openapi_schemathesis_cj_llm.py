"""schemathesis, with every one of its checks, against `python -m cj_assessment_service` and
`python -m llm_provider_service` with bearer tokens on: a valid token with every scope of the
service is sent, and the negative mode's invalid credentials must get 401/403 (the same run as
the submission service's suite, `common_core.testing.schemathesis`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cj_assessment_service.testing.process import process_env as cj_env
from cj_assessment_service.testing.requests import unique_prefix
from common_core.runtime.http_auth import sign_token
from common_core.testing.schemathesis import TESTED_PHASES, run_schemathesis
from common_core.testing.service_process import running_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AUTH_SECRET = "the-schemathesis-secret-of-32-bytes-or-more"
SEED = 20261206
MAX_EXAMPLES_PER_OPERATION = 25


def _bearer(audience: str, *scopes: str) -> str:
    token = sign_token(
        AUTH_SECRET, subject="schemathesis", scopes=scopes, issuer="huleedu", audience=audience
    )
    return f"Authorization: Bearer {token}"


@pytest.fixture
async def cj_url(
    database_url: str, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    env = cj_env(
        database_url,
        kafka_bootstrap_servers,
        unique_prefix(),
        AUTH_JWT_SECRET=AUTH_SECRET,
        # Human judging on: its organiser routes answer, not only 503 (the judging page is HTML
        # outside the document, tested in test_http_judging.py).
        JUDGE_LINK_SECRET=AUTH_SECRET,
    )
    async with running_service(
        "cj_assessment_service", env=env, log_dir=tmp_path_factory.mktemp("cj")
    ) as service:
        yield service.url


@pytest.fixture
async def llm_url(
    postgres_server_url: str,
    kafka_bootstrap_servers: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": postgres_server_url,  # its own database on the server
        "TOPIC_PREFIX": unique_prefix(),
        "AUTH_JWT_SECRET": AUTH_SECRET,
    }
    async with running_service(
        "llm_provider_service", env=env, log_dir=tmp_path_factory.mktemp("llm")
    ) as service:
        yield service.url


def _assert_clean(
    base_url: str,
    workdir: Path,
    header: str,
    operations: int,
    phases: tuple[str, ...] = TESTED_PHASES,
    options: tuple[str, ...] = (),
) -> None:
    run = run_schemathesis(
        base_url,
        workdir,
        seed=SEED,
        max_examples=MAX_EXAMPLES_PER_OPERATION,
        headers=[header],
        options=options,
    )
    assert run.returncode == 0, run.console
    assert run.report, run.console
    assert run.report["failures"] == [], run.console
    assert run.report["errors"] == [], run.console
    assert run.report["operations"]["tested"] == run.report["operations"]["selected"] == operations
    statuses = {phase: run.report["phases"][phase]["status"] for phase in phases}
    assert statuses == dict.fromkeys(phases, "success"), run.console


def test_cj_assessment_api_passes_every_schemathesis_check(cj_url: str, tmp_path: Path) -> None:
    _assert_clean(
        cj_url,
        tmp_path,
        _bearer("huleedu-cj", "cj:read", "cj:write", "cj:erase"),
        operations=9,
        # The essay-set upload's body is NDJSON, a grammar JSON Schema cannot state (a document
        # saying "a string" makes schemathesis expect any string to be accepted); its own tests
        # (test_http_essay_sets.py) cover it, bad lines and sizes included.
        options=("--exclude-path=/api/v1/essay-sets",),
    )


def test_llm_provider_api_passes_every_schemathesis_check(llm_url: str, tmp_path: Path) -> None:
    # Two GETs and the erasure, whose id no other operation returns: no links between
    # operations, so no stateful phase to run.
    _assert_clean(
        llm_url,
        tmp_path,
        _bearer("huleedu-llm", "llm:read", "llm:erase"),
        operations=5,
        phases=("coverage", "fuzzing"),
    )
