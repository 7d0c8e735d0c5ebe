"""Batch mode with the service as a process (`python -m llm_provider_service`) over the real
broker and PostgreSQL, against the fake OpenAI and Anthropic batch endpoints through the SDKs:
200 requests get one callback each from as many provider batches as configured; SIGKILL after a
provider batch was submitted, then a restart, submits nothing twice and answers everything once."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from common_core.events.envelope import EventEnvelope, decode_event
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMMode,
    LLMProviderName,
)
from common_core.runtime.database import asyncpg_dsn, create_engine
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import eventually, read_topic
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from llm_provider_service.testing.fake_llm_server import FAKE_COMPLETION_TOKENS, FakeLLMServer
from llm_provider_service.testing.requests import comparison_envelope

pytestmark = pytest.mark.integration

PROVIDER_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LLM_")
REQUESTS = 200


@pytest.fixture
async def service_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A database of its own for the service under test (created by its migrations)."""
    name = f"llm_{uuid.uuid4().hex}"
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await connection.close()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(batch_script=BatchScript(latency=0.5)) as server:
        yield server


@pytest.fixture
def service_env(
    kafka_bootstrap_servers: str, service_database: str, fake_llm: FakeLLMServer
) -> dict[str, str]:
    prefix = f"llmbatch{uuid.uuid4().hex[:10]}"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": service_database,
        "TOPIC_PREFIX": prefix,
        "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
        "LOG_LEVEL": "INFO",
        "LLM_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LLM_SHUTDOWN_GRACE_SECONDS": "3",
        "OPENAI_API_KEY": "sk-test-batch",
        "OPENAI_BASE_URL": fake_llm.openai_base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test-batch",
        "ANTHROPIC_BASE_URL": fake_llm.anthropic_base_url,
        # Chunks form by size only (the window is long), so the number of batches is exact.
        "LLM_BATCH_WINDOW_SECONDS": "600",
        "LLM_BATCH_MAX_SIZE": str(REQUESTS),
        "LLM_BATCH_TICK_SECONDS": "0.2",
        "LLM_BATCH_POLL_INITIAL_SECONDS": "0.2",
        "LLM_BATCH_POLL_MAX_SECONDS": "1",
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
    }


async def _start(env: dict[str, str], log_dir: Path) -> ServiceProcess:
    return await start_service(
        "llm_provider_service",
        env=env,
        log_dir=log_dir,
        keep_provider_keys=True,
        unset_prefixes=PROVIDER_PREFIXES,
        ready_path="/healthz/ready",
    )


async def _publish_batch_requests(
    kafka: str, prefix: str, provider: LLMProviderName
) -> tuple[str, list[EventEnvelope[LLMComparisonRequestV1]]]:
    requests_topic = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
    callbacks = f"{prefix}.cj.callbacks"
    await ensure_topics(kafka, [requests_topic, callbacks], partitions=3)
    envelopes = [
        comparison_envelope(
            requests_topic, callbacks, metadata={"n": i}, provider=provider, mode=LLMMode.BATCH
        )
        for i in range(REQUESTS)
    ]
    async with KafkaEventProducer(kafka, client_id="test") as producer:
        for i, envelope in enumerate(envelopes):
            await producer.publish(requests_topic, envelope, key=f"pair-{i}")
    return callbacks, envelopes


async def _callbacks(kafka: str, topic: str) -> Counter[UUID]:
    """Request ids of every callback (duplicates counted), read until all arrived and a
    little longer, to catch a second callback of any request."""
    records = await read_topic(kafka, topic, expected=REQUESTS, timeout=120, settle=2.0)
    results = [decode_event(r.value, LLMComparisonResultV1).data for r in records]
    assert all(not r.is_error for r in results), [r.error_detail for r in results if r.is_error]
    assert all(r.usage.prompt_tokens > 0 for r in results)
    assert all(r.usage.completion_tokens == FAKE_COMPLETION_TOKENS for r in results)
    return Counter(r.request_id for r in results)


class TestBatchModeProcess:
    @pytest.mark.parametrize("provider", [LLMProviderName.OPENAI, LLMProviderName.ANTHROPIC])
    async def test_every_request_gets_one_callback_from_one_provider_batch(
        self,
        provider: LLMProviderName,
        service_env: dict[str, str],
        fake_llm: FakeLLMServer,
        kafka_bootstrap_servers: str,
        tmp_path: Path,
    ) -> None:
        service = await _start(service_env, tmp_path)
        try:
            topic, envelopes = await _publish_batch_requests(
                kafka_bootstrap_servers, service_env["TOPIC_PREFIX"], provider
            )
            seen = await _callbacks(kafka_bootstrap_servers, topic)
            assert service.stop(timeout=30) == 0
        finally:
            service.kill()
        assert set(seen) == {e.data.request_id for e in envelopes}
        assert set(seen.values()) == {1}, "a request got more than one callback"
        assert fake_llm.batches.created == [
            (provider.value, fake_llm.batches.created[0][1], REQUESTS)
        ]
        assert fake_llm.received == []  # nothing went through the synchronous API

    async def test_requests_are_split_into_chunks_of_the_configured_size(
        self,
        service_env: dict[str, str],
        fake_llm: FakeLLMServer,
        kafka_bootstrap_servers: str,
        tmp_path: Path,
    ) -> None:
        env = {**service_env, "LLM_BATCH_MAX_SIZE": "50"}
        service = await _start(env, tmp_path)
        try:
            topic, envelopes = await _publish_batch_requests(
                kafka_bootstrap_servers, env["TOPIC_PREFIX"], LLMProviderName.OPENAI
            )
            seen = await _callbacks(kafka_bootstrap_servers, topic)
        finally:
            service.kill()
        assert set(seen) == {e.data.request_id for e in envelopes}
        assert set(seen.values()) == {1}
        assert [count for _, _, count in fake_llm.batches.created] == [50, 50, 50, 50]

    async def test_sigkill_after_submission_then_restart_submits_nothing_twice(
        self,
        service_env: dict[str, str],
        fake_llm: FakeLLMServer,
        kafka_bootstrap_servers: str,
        tmp_path: Path,
    ) -> None:
        fake_llm.batches.script.held = True  # the provider batch runs until released
        first = await _start(service_env, tmp_path)
        second: ServiceProcess | None = None
        engine = create_engine(service_env["DATABASE_URL"], pool_size=1)
        try:
            topic, envelopes = await _publish_batch_requests(
                kafka_bootstrap_servers, service_env["TOPIC_PREFIX"], LLMProviderName.OPENAI
            )

            async def submitted() -> int:
                async with engine.connect() as connection:
                    found = await connection.scalar(
                        text("SELECT count(*) FROM provider_batches WHERE state = 'submitted'")
                    )
                return int(found or 0)

            await eventually(submitted, until=lambda n: n == 1, timeout=60, what="submitted")
            first.kill()  # SIGKILL: the batch is at the provider, no result has arrived
            assert len(fake_llm.batches.created) == 1

            second = await _start(service_env, tmp_path)
            fake_llm.batches.script.held = False
            seen = await _callbacks(kafka_bootstrap_servers, topic)
            assert second.stop(timeout=30) == 0
        finally:
            first.kill()
            if second is not None:
                second.kill()
            await engine.dispose()
        assert set(seen) == {e.data.request_id for e in envelopes}
        assert set(seen.values()) == {1}, "a request got more than one callback"
        assert len(fake_llm.batches.created) == 1, "the provider batch was submitted again"
