"""Texts that game a feature-based judge rank below an honest weak essay in a real CJ batch.

The CJ and LLM provider services run as processes with the heuristic judge (the default without
an API key); the batch carries the sample prompt and rubric, as `huleedu cj submit` sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from common_core.events import EssayToProcess
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.judge_tricks import (
    ESSAYS,
    GOOD_ID,
    HONEST_WEAK_ID,
    OFF_TOPIC,
    PROMPT,
    RUBRIC,
    keyword_list,
    padded,
    shuffled,
)

pytestmark = pytest.mark.integration

TRICKS = {
    "prompt_pasted": PROMPT,
    "good_shuffled": shuffled(ESSAYS[GOOD_ID], 0),
    "paragraph_padded": padded(ESSAYS[GOOD_ID], 6),
    "keyword_list": keyword_list(PROMPT, RUBRIC),
    "off_topic": OFF_TOPIC,
}


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
    prefix = f"tr{uuid.uuid4().hex[:10]}"
    logs: Path = tmp_path_factory.mktemp("tricks-logs")
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
    }
    llm = await start_service(
        "llm_provider_service", env={**common, "DATABASE_URL": postgres_server_url}, log_dir=logs
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


class TestTricksInACJBatch:
    async def test_every_trick_ranks_below_the_honest_weak_essay(self, stack: Stack) -> None:
        essays = [
            EssayToProcess(essay_id=GOOD_ID, text_content=ESSAYS[GOOD_ID]),
            EssayToProcess(essay_id=HONEST_WEAK_ID, text_content=ESSAYS[HONEST_WEAK_ID]),
            *(EssayToProcess(essay_id=name, text_content=text) for name, text in TRICKS.items()),
        ]
        request = build_cj_request(
            essays,
            entity_ref=f"tricks-{uuid.uuid4().hex[:8]}",
            essay_instructions=PROMPT,
            judge_rubric=RUBRIC,
        )

        completed = await run_cj_batch(
            request,
            bootstrap_servers=stack.kafka,
            topic_prefix=stack.prefix,
            cj_url=stack.cj.url,
            timeout=180.0,
        )

        rank = {ranking.essay_id: ranking.rank for ranking in completed.rankings}
        assert rank[GOOD_ID] == 1
        assert rank[HONEST_WEAK_ID] == 2
        for name in TRICKS:
            assert rank[name] > rank[HONEST_WEAK_ID], name
