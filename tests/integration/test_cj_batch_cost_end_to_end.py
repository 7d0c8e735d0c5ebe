"""A CJ batch judged through the OpenAI SDK: the completed event sums the tokens, the cached
tokens and the estimated cost of its answers, and names the judge.

The CJ and LLM provider services run as processes; the provider is the official `openai` SDK
against the local fake server (in this test's event loop), which reports usage with prompt-cache
hits. The batch's rubric is long enough for its static prefix to be cached (about 3,500
tokens). One request in flight at a time, so every request after the first finds the prefix
cached.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common_core.events import EssayToProcess
from common_core.events.cj import CJAssessmentCompletedV1, JudgeIdentity
from common_core.events.llm import LLMProviderName, TokenUsage
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.config import PRICE_TABLE_PATH, load_price_table
from llm_provider_service.domain.pricing import estimate_cost
from llm_provider_service.domain.prompts import COMPARISON_PROMPT_VERSION
from llm_provider_service.testing.fake_llm_server import FakeLLMServer
from llm_provider_service.testing.judge_tricks import ESSAYS, PROMPT

pytestmark = pytest.mark.integration

LONG_RUBRIC = " ".join(
    f"Criterion {i}: the essay weighs evidence for its claims, answers the assignment and "
    f"explains how point {i} supports its conclusion."
    for i in range(100)
)


@dataclass(frozen=True)
class Stack:
    kafka: str
    prefix: str
    cj: ServiceProcess
    fake: FakeLLMServer


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    postgres_server_url: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    prefix = f"cost{uuid.uuid4().hex[:10]}"
    logs: Path = tmp_path_factory.mktemp("cost-logs")
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers, "TOPIC_PREFIX": prefix}
    async with FakeLLMServer() as fake:
        llm = await start_service(
            "llm_provider_service",
            env={
                **common,
                "DATABASE_URL": postgres_server_url,
                "OPENAI_API_KEY": "test-openai-key",
                "OPENAI_BASE_URL": fake.openai_base_url,
                "LLM_DEFAULT_PROVIDER": "openai",
                "LLM_MAX_IN_FLIGHT": "1",
            },
            log_dir=logs,
            keep_provider_keys=True,
            unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
        )
        try:
            cj = await start_service(
                "cj_assessment_service", env={**common, "DATABASE_URL": database_url}, log_dir=logs
            )
            try:
                yield Stack(kafka_bootstrap_servers, prefix, cj, fake)
            finally:
                cj.stop()
        finally:
            llm.stop()


async def _run(stack: Stack, n_essays: int, model: str | None = None) -> CJAssessmentCompletedV1:
    essays = [
        EssayToProcess(essay_id=essay_id, text_content=text)
        for essay_id, text in list(ESSAYS.items())[:n_essays]
    ]
    request = build_cj_request(
        essays,
        entity_ref=f"cost-{uuid.uuid4().hex[:8]}",
        essay_instructions=PROMPT,
        judge_rubric=LONG_RUBRIC,
        provider=LLMProviderName.OPENAI if model else None,
        model=model,
    )
    return await run_cj_batch(
        request,
        bootstrap_servers=stack.kafka,
        topic_prefix=stack.prefix,
        cj_url=stack.cj.url,
        timeout=180.0,
    )


class TestBatchCost:
    async def test_the_completed_event_sums_tokens_cost_and_names_the_judge(
        self, stack: Stack
    ) -> None:
        before = len(stack.fake.reported_usage)
        completed = await _run(stack, 6)
        billed = stack.fake.reported_usage[before:]
        assert len(billed) == 15  # all pairs of six essays
        usages = [
            TokenUsage(
                prompt_tokens=u["prompt_tokens"],
                completion_tokens=u["completion_tokens"],
                cached_prompt_tokens=u["prompt_tokens_details"]["cached_tokens"],
            )
            for u in billed
        ]
        table = load_price_table(PRICE_TABLE_PATH)
        costs = [estimate_cost(table, "openai", "gpt-4o-mini", u) for u in usages]
        usage = completed.system_metadata.resource_usage
        assert usage.prompt_tokens == sum(u.prompt_tokens for u in usages)
        assert usage.completion_tokens == sum(u.completion_tokens for u in usages)
        assert usage.cached_prompt_tokens == sum(u.cached_prompt_tokens for u in usages)
        assert usage.cached_prompt_tokens >= 14 * 1024  # every request after the first
        assert usage.estimated_cost_usd == pytest.approx(sum(c for c in costs if c is not None))
        assert usage.unpriced_comparisons == 0
        assert completed.system_metadata.judges == [
            JudgeIdentity(
                provider="openai",
                model="gpt-4o-mini",
                prompt_version=COMPARISON_PROMPT_VERSION,
                comparisons=15,
            )
        ]

    async def test_a_model_without_a_price_leaves_the_batch_cost_null(self, stack: Stack) -> None:
        completed = await _run(stack, 3, model="my-local-model")
        usage = completed.system_metadata.resource_usage
        assert usage.prompt_tokens > 0
        assert usage.estimated_cost_usd is None
        assert usage.unpriced_comparisons == 3
        assert [j.model for j in completed.system_metadata.judges] == ["my-local-model"]
