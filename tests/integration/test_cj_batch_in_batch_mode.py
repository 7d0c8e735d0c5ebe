"""A CJ batch whose comparisons go through the provider's batch API reaches completion.

The CJ and LLM provider services run as processes; the CJ request's `llm_config_overrides`
asks for `mode: batch`, which CJ passes on in every comparison request; the LLM provider
collects them into provider batches at the fake OpenAI batch endpoints (through the SDK).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from common_core.events import EssayToProcess
from common_core.events.llm import LLMConfig, LLMMode, LLMProviderName
from common_core.runtime.database import asyncpg_dsn
from common_core.testing.service_process import running_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from llm_provider_service.testing.fake_llm_server import FakeLLMServer
from llm_provider_service.testing.judge_tricks import ESSAYS, PROMPT

pytestmark = pytest.mark.integration

ESSAY_IDS = sorted(ESSAYS)[:6]


@pytest.fixture
async def llm_database(postgres_server_url: str) -> AsyncIterator[str]:
    name = f"llmcj_{uuid.uuid4().hex}"
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await connection.close()


async def test_a_cj_batch_in_batch_mode_reaches_completion(
    kafka_bootstrap_servers: str, database_url: str, llm_database: str, tmp_path: Path
) -> None:
    prefix = f"cjbm{uuid.uuid4().hex[:10]}"
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers, "TOPIC_PREFIX": prefix}
    async with FakeLLMServer(batch_script=BatchScript(latency=0.5)) as fake:
        llm_env = {
            **common,
            "DATABASE_URL": llm_database,
            "OPENAI_API_KEY": "sk-test-cj-batch",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "LLM_BATCH_WINDOW_SECONDS": "0.5",
            "LLM_BATCH_TICK_SECONDS": "0.2",
            "LLM_BATCH_POLL_INITIAL_SECONDS": "0.2",
            "LLM_BATCH_POLL_MAX_SECONDS": "1",
            "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
        }
        async with (
            running_service(
                "llm_provider_service",
                env=llm_env,
                log_dir=tmp_path,
                keep_provider_keys=True,
                unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
                ready_path="/healthz/ready",
            ),
            running_service(
                "cj_assessment_service",
                env={**common, "DATABASE_URL": database_url},
                log_dir=tmp_path,
            ) as cj,
        ):
            request = build_cj_request(
                [EssayToProcess(essay_id=i, text_content=ESSAYS[i]) for i in ESSAY_IDS],
                entity_ref=f"batch-mode-{uuid.uuid4().hex[:8]}",
                essay_instructions=PROMPT,
            ).model_copy(
                update={
                    "llm_config_overrides": LLMConfig(
                        provider=LLMProviderName.OPENAI, mode=LLMMode.BATCH
                    )
                }
            )
            completed = await run_cj_batch(
                request,
                bootstrap_servers=kafka_bootstrap_servers,
                topic_prefix=prefix,
                cj_url=cj.url,
                timeout=180.0,
            )
    assert sorted(r.essay_id for r in completed.rankings) == ESSAY_IDS
    assert fake.batches.created, "no provider batch was submitted"
    assert fake.received == [], "a comparison went through the synchronous API"
    assert sum(count for _, _, count in fake.batches.created) >= len(ESSAY_IDS)
