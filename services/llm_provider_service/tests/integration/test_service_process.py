"""The service as a process (`python -m llm_provider_service`) over the real broker: its HTTP
surface, and SIGKILL while requests are in flight followed by a restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from common_core.events.envelope import decode_event
from common_core.events.llm import LLMComparisonResultV1
from common_core.runtime.http_auth import sign_token
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from llm_provider_service.testing.fake_llm_server import FakeLLMServer
from llm_provider_service.testing.requests import comparison_envelope

pytestmark = pytest.mark.integration

SECRET_KEY = "sk-test-never-shown-0123456789"
AUTH_SECRET = "auth-secret-of-the-test-never-shown-0123"
# Inherited provider settings the child must not see; the tests set their own.
PROVIDER_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LLM_")


async def _start(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    """One `python -m llm_provider_service` child, ready once `/healthz/ready` answers 200."""
    return await start_service(
        "llm_provider_service",
        env=env,
        log_dir=log_dir,
        keep_provider_keys=True,
        unset_prefixes=PROVIDER_PREFIXES,
        ready_path="/healthz/ready",
    )


@pytest.fixture
def service_env(kafka_bootstrap_servers: str, postgres_server_url: str) -> dict[str, str]:
    prefix = f"llmproc{uuid.uuid4().hex[:10]}"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": postgres_server_url,
        "TOPIC_PREFIX": prefix,
        "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
        "LOG_LEVEL": "WARNING",
        "LLM_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LLM_SHUTDOWN_GRACE_SECONDS": "3",
    }


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(delay=1.0) as server:
        yield server


async def _callback_ids(kafka: str, topic: str, wanted: set[UUID], timeout: float) -> list[UUID]:
    """Every request id seen on the callback topic (duplicates kept) until all wanted appear."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[UUID] = []
    try:
        async with asyncio.timeout(timeout):
            while not wanted <= set(seen):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        seen.append(
                            decode_event(record.value, LLMComparisonResultV1).data.request_id
                        )
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return seen


class TestServiceProcess:
    async def test_http_surface_shows_providers_without_keys(
        self, service_env: dict[str, str], fake_llm: FakeLLMServer, tmp_path: Path
    ) -> None:
        env = {
            **service_env,
            "OPENAI_API_KEY": SECRET_KEY,
            "OPENAI_BASE_URL": fake_llm.openai_base_url,
            "AUTH_JWT_SECRET": AUTH_SECRET,
            "LLM_SPEND_ALERT_USD_PER_HOUR": "12.5",
            "DATABASE_POOL_SIZE": "3",
        }
        token = sign_token(
            AUTH_SECRET,
            subject="ops",
            scopes=["llm:read"],
            issuer="huleedu",
            audience="huleedu-llm",
        )
        wrong_scope = sign_token(
            AUTH_SECRET, subject="ops", scopes=["cj:read"], issuer="huleedu", audience="huleedu-llm"
        )
        service = await _start(env, tmp_path)
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                assert (await client.get(f"{service.url}/healthz")).status_code == 200
                anonymous = await client.get(f"{service.url}/api/v1/providers")
                refused = await client.get(
                    f"{service.url}/api/v1/providers",
                    headers={"Authorization": f"Bearer {wrong_scope}"},
                )
                bearer = {"Authorization": f"Bearer {token}"}
                response = await client.get(f"{service.url}/api/v1/providers", headers=bearer)
                prices = await client.get(f"{service.url}/api/v1/prices", headers=bearer)
                metrics = await client.get(f"{service.url}/metrics")
        finally:
            service.kill()
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == 'Bearer realm="llm_provider_service"'
        assert refused.status_code == 403
        assert refused.json()["code"] == "insufficient_scope"
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        assert body["default_provider"] == "openai"
        assert body["default_mode"] == "sync"
        assert body["rate_limit_scope"] == "shared"
        providers = {p["name"]: p for p in body["providers"]}
        assert providers["openai"]["configured"] is True
        assert providers["openai"]["circuit"]["state"] == "closed"
        assert providers["openai"]["limits"]["requests_per_minute"] > 0
        assert providers["anthropic"]["configured"] is False
        assert providers["heuristic"]["configured"] is True
        assert SECRET_KEY not in response.text
        assert prices.status_code == 200
        table = prices.json()
        assert table["as_of"]
        assert table["providers"]["openai"]["gpt-4o-mini"]["cached_input"] > 0
        assert "huleedu_llm_in_flight_requests" in metrics.text
        # common_core's HTTP metrics by route template and status sent; the probes not counted.
        for status in ("401", "403", "200"):
            assert (
                f'huleedu_http_requests_total{{method="GET",route="/api/v1/providers",'
                f'status="{status}"}} 1.0' in metrics.text
            )
        assert 'route="/healthz"' not in metrics.text
        assert 'huleedu_db_pool_connections_capacity{service="llm_provider_service"} 6.0' in (
            metrics.text
        )
        assert "huleedu_llm_spend_alert_usd_per_hour 12.5" in metrics.text
        log_text = service.log_path.read_text()
        assert SECRET_KEY not in log_text
        assert token not in log_text
        assert AUTH_SECRET not in log_text

    async def test_sigkill_mid_flight_then_restart_answers_every_request(
        self,
        service_env: dict[str, str],
        fake_llm: FakeLLMServer,
        kafka_bootstrap_servers: str,
        tmp_path: Path,
    ) -> None:
        prefix = service_env["TOPIC_PREFIX"]
        requests_topic = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
        callbacks = f"{prefix}.cj.callbacks"
        await ensure_topics(kafka_bootstrap_servers, [requests_topic, callbacks], partitions=3)
        env = {
            **service_env,
            "OPENAI_API_KEY": SECRET_KEY,
            "OPENAI_BASE_URL": fake_llm.openai_base_url,
            "LLM_MAX_IN_FLIGHT": "6",
            "LLM_REQUEST_TIMEOUT_SECONDS": "10",
        }
        first = await _start(env, tmp_path)
        second: ServiceProcess | None = None
        try:
            envelopes = [
                comparison_envelope(requests_topic, callbacks, metadata={"n": i}) for i in range(24)
            ]
            async with KafkaEventProducer(kafka_bootstrap_servers, client_id="test") as producer:
                for i, envelope in enumerate(envelopes):
                    await producer.publish(requests_topic, envelope, key=f"batch-{i % 4}")

            async def received() -> int:
                return len(fake_llm.received)

            await eventually(
                received, until=lambda n: n >= 8, timeout=60, what="requests in flight"
            )
            first.kill()  # SIGKILL: no drain, no commit
            assert fake_llm.answered < len(envelopes), "the kill must happen mid-flight"

            second = await _start(env, tmp_path)
            wanted = {e.data.request_id for e in envelopes}
            seen = await _callback_ids(kafka_bootstrap_servers, callbacks, wanted, timeout=90)
            assert wanted <= set(seen), f"lost: {len(wanted - set(seen))} requests"
            assert len(seen) >= len(wanted)  # duplicates allowed, losses not
            assert second.stop(timeout=30) == 0  # SIGTERM: drain, commit, leave cleanly
        finally:
            first.kill()
            if second is not None:
                second.kill()
