"""ENVIRONMENT=production: every service refuses to start, before it connects to anything, on a
placeholder or short secret or with its API open, and says which setting is wrong in one JSON
log line (`settings_invalid`, exit status 78)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

STRONG = "a-production-secret-that-is-long-enough-0123456789"
FERNET_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtd2ViaG9vay1rZXktMTE="
# Nothing listens here: a service that got past its settings would fail to connect instead.
UNREACHABLE = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/postgres",
}


def _start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "JWT_"))}
    inherited.pop("WEBHOOK_SECRET_KEYS", None)
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**inherited, **UNREACHABLE, "ENVIRONMENT": "production", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        ("cj_assessment_service", {}, "API authentication is disabled"),
        ("llm_provider_service", {"AUTH_MODE": "disabled", "AUTH_JWT_SECRET": STRONG}, "AUTH_MODE"),
        (
            "cj_assessment_service",
            {"AUTH_JWT_SECRET": "tiny-auth-x2"},
            "AUTH_JWT_SECRET is shorter",
        ),
        (
            "submission_service",
            {"WEBHOOK_SECRET_KEYS": FERNET_KEY},
            "JWT_SECRET is the development default",
        ),
        (
            "submission_service",
            {"JWT_SECRET": "tiny-jwt-x1", "WEBHOOK_SECRET_KEYS": FERNET_KEY},
            "JWT_SECRET is shorter than 32 bytes",
        ),
        ("submission_service", {"JWT_SECRET": STRONG}, "WEBHOOK_SECRET_KEYS"),
    ],
)
def test_a_service_refuses_to_start_and_names_the_setting(
    module: str, env: dict[str, str], named: str
) -> None:
    finished = _start(module, **env)
    output = finished.stdout + finished.stderr

    assert finished.returncode == 78
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    refusals = [line for line in lines if line.get("event") == "settings_invalid"]
    assert len(refusals) == 1, output
    problems = json.dumps(refusals[0]["problems"])
    assert "ENVIRONMENT=production refuses to start" in problems
    assert named in problems
    assert "Traceback" not in output
    secrets = [value for name, value in env.items() if name != "AUTH_MODE"]
    assert not [secret for secret in secrets if secret in output]
