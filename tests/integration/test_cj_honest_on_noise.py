"""A CJ batch whose verdicts carry no information claims no reliability (issue 24).

60 essays of the same quality (the judge never reads them), 20 comparisons per essay, the
service's default reliability target (0.9), through the real CJ and LLM provider services and a
local fake OpenAI server, four judges at once: hard verdicts (no log-probabilities) from a judge
that always prefers the essay shown first and from a coin, and soft verdicts (the verdict
token's log-probabilities) from a judge that states 0.7 for the essay shown first and from one
that states 0.5 +- 0.15 at random. The service spends the whole budget, its posterior
reliability is 0, and scale separation and split-half reliability, which adaptive pairing alone
pushes to 0.8-0.9 here, are marked not valid.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from statistics import mean as statistics_mean

import pytest
from sqlalchemy import select

from cj_assessment_service.adapters.tables import cj_pairs
from cj_assessment_service.domain.batch import PairStatus
from common_core.events import EssayToProcess
from common_core.events.cj import CJAssessmentCompletedV1, CJCompletionReason
from common_core.events.llm import LLMProviderName
from common_core.runtime.database import create_engine
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.fake_llm_server import (
    FakeLLMServer,
    FakeReply,
    ReceivedRequest,
)

# Several service processes and thousands of calls: on a loaded 2-core machine a test takes
# minutes (no timing is asserted); the limit only stops a hang.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ESSAYS = 60
PER_ESSAY = 20


JUDGES = ("hard-first-shown", "hard-coin", "soft-first-shown", "soft-coin")


def _hard(winner: str) -> FakeReply:
    """A verdict in the first prompt version's words: no verdict token, no probability."""
    verdict = {"winner": winner, "justification": "No essay is better.", "confidence": 3}
    return FakeReply(content=json.dumps(verdict))


def _by_judge(request: ReceivedRequest, index: int) -> FakeReply:
    """The judge the batch's instructions name; the coins are seeded by the call's index."""
    if not request.is_comparison:
        return FakeReply()
    prompt = json.dumps(request.body)
    coin = random.Random(index).random()
    if "hard-first-shown" in prompt:
        return _hard("essay_a")
    if "hard-coin" in prompt:
        return _hard("essay_a" if coin < 0.5 else "essay_b")
    if "soft-first-shown" in prompt:
        return FakeReply(probability=0.7)
    return FakeReply(probability=0.35 + 0.3 * coin)


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
    async with FakeLLMServer(_by_judge) as fake:
        llm = await start_service(
            "llm_provider_service",
            env={
                **common,
                "DATABASE_URL": postgres_server_url,
                "OPENAI_API_KEY": "test-openai-key",
                "OPENAI_BASE_URL": fake.openai_base_url,
                "LLM_DEFAULT_PROVIDER": "openai",
                # The default budgets (200,000 tokens a minute) would pace 2,400 calls over
                # seven minutes; the fake server has no quota to protect.
                "OPENAI_REQUESTS_PER_MINUTE": "1000000",
                "OPENAI_TOKENS_PER_MINUTE": "1000000000",
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


async def _stored_probabilities(database_url: str, job_id: str) -> list[float | None]:
    """The verdict probabilities the CJ service stored on the batch's answered pairs."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(cj_pairs.c.probability_a_better).where(
                    cj_pairs.c.batch_id == uuid.UUID(job_id),
                    cj_pairs.c.status == PairStatus.COMPLETED,
                )
            )
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


async def _run_batch(stack: Stack, judge: str) -> CJAssessmentCompletedV1:
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
    return await run_cj_batch(
        request,
        bootstrap_servers=stack.kafka,
        topic_prefix=stack.prefix,
        cj_url=stack.cj.url,
        timeout=420.0,
    )


class TestHonestOnNoise:
    async def test_batches_of_pure_chance_claim_no_reliability_hard_or_soft(
        self, stack: Stack, database_url: str
    ) -> None:
        # The four batches run at once: the services judge them side by side.
        batches = await asyncio.gather(*(_run_batch(stack, judge) for judge in JUDGES))

        for judge, completed in zip(JUDGES, batches, strict=True):
            statistics = completed.statistics
            assert completed.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED, judge
            assert statistics.target_reliability == 0.9
            assert statistics.posterior_reliability is not None
            assert statistics.posterior_reliability <= 0.05, (judge, statistics)
            assert statistics.not_valid_reliabilities == [
                "scale_separation_reliability",
                "split_half_reliability",
            ]
            usage = completed.system_metadata.resource_usage
            assert usage.completed_comparisons == ESSAYS * PER_ESSAY // 2
            # The soft judges' probabilities reached the fit; the hard judges gave none.
            stored = await _stored_probabilities(database_url, completed.cj_assessment_job_id)
            assert len(stored) == ESSAYS * PER_ESSAY // 2
            soft = judge.startswith("soft")
            assert statistics.soft_verdicts == (ESSAYS * PER_ESSAY // 2 if soft else 0), judge
            if soft:
                probabilities = [p for p in stored if p is not None]
                assert len(probabilities) == len(stored), judge
                assert 0.3 < statistics_mean(probabilities) < 0.75, judge
            else:
                assert all(p is None for p in stored), judge
