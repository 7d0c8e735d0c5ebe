"""`huleedu erase learner` against the real submission service (`python -m submission_service`
on a free port): an anonymous learner's answer is erased, a repeat says so, and a token without
the scope is refused with exit code 1."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from common_core.runtime.http_auth import sign_token
from common_core.testing.service_process import running_service
from huleedu_cli.app import app

pytestmark = pytest.mark.integration

JWT_SECRET = "cli-erasure-test-secret-0123456789abcdef"


@dataclass(frozen=True)
class Submission:
    """Where the running submission service is."""

    url: str


@pytest.fixture(scope="module")
async def submission(
    kafka_bootstrap_servers: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Submission]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": f"cli{uuid.uuid4().hex[:10]}",
        "TOPIC_PARTITIONS": "1",
        "JWT_SECRET": JWT_SECRET,
        "WEBHOOK_SECRET_KEYS": Fernet.generate_key().decode(),
        "LOG_LEVEL": "WARNING",
    }
    logs = tmp_path_factory.mktemp("submission-logs")
    async with running_service("submission_service", env=env, log_dir=logs) as service:
        yield Submission(url=service.url)


def _token(scope: str) -> str:
    return sign_token(
        JWT_SECRET,
        subject="operator-cli",
        scopes=[scope],
        issuer="huleedu",
        audience="huleedu-submission",
    )


def test_erases_an_anonymous_learner_then_reports_already_erased(submission: Submission) -> None:
    learner = str(uuid.uuid4())
    created = httpx.post(
        f"{submission.url}/api/assessments/responses",
        json={"module_slug": "m1", "question_id": "q1", "answer_text": "A learner's answer."},
        headers={"X-Anonymous-Token": learner},
    )
    assert created.status_code == 201
    command = [
        "erase", "learner", "--anonymous-token", learner,
        "--submission-url", submission.url, "--api-token", _token("submission:erase"),
    ]  # fmt: skip

    first = CliRunner().invoke(app, command)
    second = CliRunner().invoke(app, command)

    assert first.exit_code == 0, first.output
    assert "learner (anonymous token): erased" in first.stdout
    assert "answer_texts         1" in first.stdout
    assert "A learner's answer." not in first.output
    assert second.exit_code == 0, second.output
    assert "already erased, nothing left to remove" in second.stdout
    listed = httpx.get(
        f"{submission.url}/api/assessments/responses", headers={"X-Anonymous-Token": learner}
    )
    assert [r["answer_text"] for r in listed.json()["responses"]] == [""]


def test_a_token_without_the_scope_exits_1(submission: Submission) -> None:
    result = CliRunner().invoke(
        app,
        [
            "erase", "learner", "--user-id", "someone",
            "--submission-url", submission.url, "--api-token", _token("submission:read"),
        ],
    )  # fmt: skip

    assert result.exit_code == 1
    assert "refused the credentials (403: insufficient_scope" in result.stderr
    assert "scope submission:erase" in result.stderr
