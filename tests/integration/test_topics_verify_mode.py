"""`KAFKA_TOPICS_MODE=verify` on a real service process (`python -m llm_provider_service`): the
service creates no topic, keeps running with its workers waiting, answers `/healthz/ready` with
503 naming the topics that are missing or too small, and once `huleedu topics apply` created
them is ready and answers requests."""

from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from common_core.events.envelope import decode_event
from common_core.events.llm import LLMComparisonResultV1
from common_core.runtime.kafka_admin import TopicSpec, apply_topics, describe_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import eventually
from common_core.testing.kafka_reading import read_topic
from common_core.testing.service_process import ServiceProcess, running_service
from common_core.topics import Topic, topic_name
from huleedu_cli.app import app
from llm_provider_service.config import Settings
from llm_provider_service.entrypoints.runtime import service_topics
from llm_provider_service.testing.requests import comparison_envelope

pytestmark = pytest.mark.integration

# Layout variables of the shell running the tests stay out of the service and of the plan.
INHERITED_LAYOUT = ("TOPIC_", "KAFKA_TOPICS_")


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch) -> str:
    for name in list(os.environ):
        if name.upper().startswith(INHERITED_LAYOUT):
            monkeypatch.delenv(name)
    return f"tv{uuid.uuid4().hex[:12]}"


def planned(prefix: str) -> dict[str, TopicSpec]:
    """The LLM provider service's topics as it expects them under `prefix`."""
    settings = Settings(topic_prefix=prefix)
    return {spec.name: spec for spec in settings.topic_specs(service_topics(settings))}


@pytest.fixture
def service_env(
    kafka_bootstrap_servers: str, postgres_server_url: str, prefix: str
) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": postgres_server_url,
        "TOPIC_PREFIX": prefix,
        "KAFKA_TOPICS_MODE": "verify",
        "LLM_DEFAULT_PROVIDER": "heuristic",
        "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
    }


def verifying_service(
    env: dict[str, str], log_dir: Path
) -> AbstractAsyncContextManager[ServiceProcess]:
    """The service in verify mode, ready once it answers `/healthz` (it is not ready yet)."""
    return running_service(
        "llm_provider_service",
        env=env,
        log_dir=log_dir,
        unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_", *INHERITED_LAYOUT),
    )


async def readiness(service: ServiceProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{service.url}/healthz/ready")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def waiting_workers(service: ServiceProcess) -> set[str]:
    records = service.log_records()
    return {r["worker"] for r in records if r.get("event") == "worker_waiting_for_topics"}


async def create(kafka: str, specs: list[TopicSpec]) -> None:
    await apply_topics(kafka, specs)


async def topics_under(kafka: str, prefix: str) -> set[str]:
    return {name for name in await describe_topics(kafka) if name.startswith(f"{prefix}.")}


class TestVerifyMode:
    async def test_not_ready_naming_the_missing_topics_until_apply_creates_them(
        self,
        kafka_bootstrap_servers: str,
        prefix: str,
        service_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        missing = sorted(planned(prefix))

        async with verifying_service(service_env, tmp_path) as service:
            status, body = await readiness(service)

            assert status == 503, body
            assert body["checks"]["database"] == body["checks"]["kafka"] == "ok"
            assert body["checks"]["topics"] == "unavailable: " + "; ".join(
                f"{name} is missing" for name in missing
            )
            warnings = [r for r in service.log_records() if r.get("event") == "topics_not_ready"]
            assert [w["problems"] for w in warnings] == [[f"{n} is missing" for n in missing]]
            # Its consumers wait too: subscribing would make this broker (auto-creation on)
            # create the topics they read with its defaults.
            await eventually(
                lambda: waiting_workers(service),
                until=lambda waiting: {"requests", "relay"} <= waiting,
                what="worker_waiting_for_topics of the consumer and the relay",
            )
            assert await topics_under(kafka_bootstrap_servers, prefix) == set()

            applied = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                ["topics", "apply", "--kafka", kafka_bootstrap_servers, "--topic-prefix", prefix],
            )
            assert applied.exit_code == 0, applied.output

            await eventually(
                lambda: readiness(service),
                until=lambda answer: answer[0] == 200,
                timeout=30.0,
                what="/healthz/ready after huleedu topics apply",
            )
            requests = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
            callbacks = topic_name(Topic.LLM_COMPARISON_RESULT, prefix)
            request = comparison_envelope(requests, callbacks)
            async with KafkaEventProducer(kafka_bootstrap_servers, client_id="verify") as producer:
                await producer.publish(requests, request, key=str(request.data.request_id))
            answered = await read_topic(kafka_bootstrap_servers, callbacks, expected=1, timeout=60)

        assert [decode_event(r.value, LLMComparisonResultV1).data.request_id for r in answered] == [
            request.data.request_id
        ]

    async def test_a_topic_with_too_few_partitions_is_named_with_its_count(
        self,
        kafka_bootstrap_servers: str,
        prefix: str,
        service_env: dict[str, str],
        tmp_path: Path,
    ) -> None:
        specs = planned(prefix)
        small = topic_name(Topic.LLM_COMPARISON_RESULT, prefix)
        await create(
            kafka_bootstrap_servers,
            [
                TopicSpec(name, partitions=1, replication_factor=1) if name == small else spec
                for name, spec in specs.items()
            ],
        )

        async with verifying_service(service_env, tmp_path) as service:
            status, body = await readiness(service)

        assert status == 503, body
        assert body["checks"]["topics"] == (
            f"unavailable: {small} has 1 partitions, expected {specs[small].partitions}"
        )
