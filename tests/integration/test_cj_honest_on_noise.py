"""A CJ batch whose verdicts carry no information claims no reliability (issue 24).

60 essays of the same quality (the judge never reads them), 20 comparisons per essay, the
service's default reliability target (0.9), through the real CJ and LLM provider services and a
local fake OpenAI server: one judge that always prefers the essay shown first (the fake's
default answer, "essay_a"), one that tosses a coin. The service spends the whole budget, its
posterior reliability is 0, and scale separation and split-half reliability, which adaptive
pairing alone pushes to 0.8-0.9 here, are marked not valid.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common_core.events import EssayToProcess
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import LLMProviderName
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.fake_llm_server import (
    FakeLLMServer,
    FakeReply,
    ReceivedRequest,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ESSAYS = 60
PER_ESSAY = 20


def _by_coin_or_first(request: ReceivedRequest, index: int) -> FakeReply:
    """Essay A for prompts that say so (the first-shown judge), else a seeded coin per call."""
    if not request.is_comparison or "first-shown" in json.dumps(request.body):
        return FakeReply()  # the fake's good answer: essay_a
    winner = "essay_a" if random.Random(index).random() < 0.5 else "essay_b"
    verdict = {"winner": winner, "justification": "A coin was tossed.", "confidence": 3}
    return FakeReply(content=json.dumps(verdict))


@dataclass(frozen=True)
class Stack:
    kafka: str
    prefix: str
    cj: ServiceProcess


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    postgres_server_url: str,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    prefix = f"noise{uuid.uuid4().hex[:10]}"
    logs: Path = tmp_path_factory.mktemp("noise-logs")
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers, "TOPIC_PREFIX": prefix}
    async with FakeLLMServer(_by_coin_or_first) as fake:
        llm = await start_service(
            "llm_provider_service",
            env={
                **common,
                "DATABASE_URL": postgres_server_url,
                "OPENAI_API_KEY": "test-openai-key",
                "OPENAI_BASE_URL": fake.openai_base_url,
                "LLM_DEFAULT_PROVIDER": "openai",
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
                yield Stack(kafka_bootstrap_servers, prefix, cj)
            finally:
                cj.stop()
        finally:
            llm.stop()


class TestHonestOnNoise:
    @pytest.mark.parametrize("judge", ["first-shown", "coin"])
    async def test_a_batch_of_pure_chance_claims_no_reliability(
        self, stack: Stack, judge: str
    ) -> None:
        essays = [
            EssayToProcess(essay_id=f"n{i:02d}", text_content=f"Essay {i}: the same answer again.")
            for i in range(ESSAYS)
        ]
        request = build_cj_request(
            essays,
            entity_ref=f"noise-{uuid.uuid4().hex[:8]}",
            essay_instructions=f"Judge: {judge}.",
            provider=LLMProviderName.OPENAI,
            max_comparisons=ESSAYS * PER_ESSAY // 2,
        )

        completed = await run_cj_batch(
            request,
            bootstrap_servers=stack.kafka,
            topic_prefix=stack.prefix,
            cj_url=stack.cj.url,
            timeout=300.0,
        )

        statistics = completed.statistics
        assert completed.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
        assert statistics.target_reliability == 0.9
        assert statistics.posterior_reliability is not None
        assert statistics.posterior_reliability <= 0.05
        assert statistics.not_valid_reliabilities == [
            "scale_separation_reliability",
            "split_half_reliability",
        ]
        usage = completed.system_metadata.resource_usage
        assert usage.completed_comparisons == ESSAYS * PER_ESSAY // 2
