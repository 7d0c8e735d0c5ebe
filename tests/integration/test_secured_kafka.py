"""The services and the CLI over a broker whose only client listener is SASL_SSL (SCRAM-SHA-512,
a test CA, ACLs per user): a whole CJ batch completes, and a refused password, an untrusted
broker certificate or a missing ACL (topics, consumer group) stops a service at start-up with one
JSON line naming the setting to fix (exit status 78) instead of retrying in silence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common_core.events import EssayToProcess
from common_core.runtime.kafka_security import KafkaSecuritySettings
from common_core.runtime.kernel import EXIT_CONFIG
from common_core.testing.service_process import (
    REPO_ROOT,
    ServiceProcess,
    free_tcp_port,
    start_service,
)
from devstack.kafka_secured import make_ca
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.judge_tricks import ESSAYS, PROMPT, RUBRIC
from tests.integration.secured_broker import (
    CJ_USER,
    CLI_USER,
    LLM_USER,
    UNGRANTED_USER,
    SecuredBroker,
)

pytestmark = pytest.mark.integration

_START_TIMEOUT = 120.0


@dataclass(frozen=True)
class SecuredStack:
    broker: SecuredBroker
    cj: ServiceProcess


def _service_env(broker: SecuredBroker, user: str, **extra: str) -> dict[str, str]:
    return {
        **broker.kafka.client_env(user),
        "TOPIC_PREFIX": broker.topic_prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
        **extra,
    }


@pytest.fixture(scope="module")
async def secured_stack(
    secured_broker: SecuredBroker,
    postgres_server_url: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[SecuredStack]:
    logs: Path = tmp_path_factory.mktemp("secured-logs")
    llm = await start_service(
        "llm_provider_service",
        env=_service_env(secured_broker, LLM_USER, DATABASE_URL=postgres_server_url),
        log_dir=logs,
        unset_prefixes=("KAFKA_",),
        ready_timeout=_START_TIMEOUT,
    )
    try:
        cj = await start_service(
            "cj_assessment_service",
            env=_service_env(secured_broker, CJ_USER, DATABASE_URL=database_url),
            log_dir=logs,
            unset_prefixes=("KAFKA_",),
            ready_timeout=_START_TIMEOUT,
        )
        try:
            yield SecuredStack(secured_broker, cj)
        finally:
            cj.stop()
    finally:
        llm.stop()


class TestACJBatchOverSaslSsl:
    async def test_a_batch_submitted_by_the_cli_user_completes(
        self, secured_stack: SecuredStack
    ) -> None:
        cli_env = secured_stack.broker.kafka.client_env(CLI_USER)
        security = KafkaSecuritySettings.model_validate({k.lower(): v for k, v in cli_env.items()})
        essays = [EssayToProcess(essay_id=eid, text_content=text) for eid, text in ESSAYS.items()]
        request = build_cj_request(
            essays,
            entity_ref=f"secured-{uuid.uuid4().hex[:8]}",
            essay_instructions=PROMPT,
            judge_rubric=RUBRIC,
        )

        completed = await run_cj_batch(
            request,
            bootstrap_servers=security.kafka_bootstrap_servers,
            security=security.kafka_security,
            topic_prefix=secured_stack.broker.topic_prefix,
            cj_url=secured_stack.cj.url,
            timeout=300.0,
        )

        assert completed.entity_ref == request.entity_ref
        assert sorted(r.essay_id for r in completed.rankings) == sorted(ESSAYS)
        assert sorted(r.rank for r in completed.rankings) == list(range(1, len(ESSAYS) + 1))


def _refused_start(
    env: Mapping[str, str], database_url: str, log_path: Path
) -> tuple[int, list[dict[str, Any]]]:
    """Run the CJ service until it exits on its own; its exit status and its log records."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    full_env = {**inherited, **env, "DATABASE_URL": database_url, "HTTP_PORT": str(free_tcp_port())}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cj_assessment_service"],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            status = process.wait(timeout=_START_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return status, records


def _refusal(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The one line that explains the refusal: no other error was logged before the exit."""
    errors = [r for r in records if r.get("level") in {"error", "critical"}]
    assert [r.get("event") for r in errors] == ["kafka_access_refused"], errors
    return errors[0]


class TestSettingsRefusedBeforeConnecting:
    def test_an_unreadable_ca_file_is_one_line_naming_it(self, tmp_path: Path) -> None:
        env = {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "cj",
            "KAFKA_SASL_PASSWORD": "pw-never-logged",
            "KAFKA_SSL_CAFILE": str(tmp_path / "missing-ca.pem"),
        }

        status, records = _refused_start(
            env, "postgresql://postgres@127.0.0.1:1/postgres", tmp_path / "cj.log"
        )

        assert status == EXIT_CONFIG
        [record] = records
        assert record["event"] == "settings_invalid"
        [problem] = record["problems"]
        assert problem["problem"].startswith(f"KAFKA_SSL_CAFILE={tmp_path / 'missing-ca.pem'}")
        assert "file not readable" in problem["problem"]
        assert "pw-never-logged" not in (tmp_path / "cj.log").read_text()


class TestAStartTheBrokerRefuses:
    def test_a_wrong_password_names_the_password_setting(
        self, secured_broker: SecuredBroker, database_url: str, tmp_path: Path
    ) -> None:
        env = _service_env(secured_broker, CJ_USER, KAFKA_SASL_PASSWORD="not-the-password")

        status, records = _refused_start(env, database_url, tmp_path / "cj.log")

        assert status == EXIT_CONFIG
        refusal = _refusal(records)
        assert refusal["setting"] == "KAFKA_SASL_PASSWORD"
        assert "invalid credentials" in refusal["cause"]
        assert "not-the-password" not in (tmp_path / "cj.log").read_text()

    def test_a_broker_certificate_from_another_ca_names_the_ca_file(
        self, secured_broker: SecuredBroker, database_url: str, tmp_path: Path
    ) -> None:
        other_ca = make_ca(tmp_path / "other-ca", "another CA")
        env = _service_env(secured_broker, CJ_USER, KAFKA_SSL_CAFILE=str(other_ca.cert_file))

        status, records = _refused_start(env, database_url, tmp_path / "cj.log")

        assert status == EXIT_CONFIG
        refusal = _refusal(records)
        assert refusal["setting"] == "KAFKA_SSL_CAFILE"
        assert "not trusted" in refusal["cause"]
        assert str(other_ca.cert_file) in refusal["cause"]

    def test_a_user_without_acls_names_the_user_and_the_topics(
        self, secured_broker: SecuredBroker, database_url: str, tmp_path: Path
    ) -> None:
        env = _service_env(secured_broker, UNGRANTED_USER)

        status, records = _refused_start(env, database_url, tmp_path / "cj.log")

        assert status == EXIT_CONFIG
        refusal = _refusal(records)
        assert refusal["setting"] == "KAFKA_SASL_USERNAME"
        assert f"user '{UNGRANTED_USER}' may not create the topics" in refusal["cause"]
        assert f"{secured_broker.topic_prefix}.cj" in refusal["cause"]

    def test_a_user_without_its_consumer_group_names_the_user_and_the_group(
        self, secured_broker: SecuredBroker, database_url: str, tmp_path: Path
    ) -> None:
        # The CLI's user may use the topics but joins no consumer group.
        env = _service_env(secured_broker, CLI_USER)

        status, records = _refused_start(env, database_url, tmp_path / "cj.log")

        assert status == EXIT_CONFIG
        refusal = _refusal(records)
        assert refusal["setting"] == "KAFKA_SASL_USERNAME"
        assert (
            f"user '{CLI_USER}' may not use the consumer group cj_assessment_service"
            in (refusal["cause"])
        )
