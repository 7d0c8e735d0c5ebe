"""Nothing private reaches a log line, even at LOG_LEVEL=DEBUG.

The three services run as processes at DEBUG; the LLM provider calls the fake OpenAI server
with an API key. A CJ batch of essays and a learner's answer, each carrying a marker string,
go through them; no line any service writes may contain a marker or the key.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from common_core.events.cj import EssayToProcess
from common_core.runtime.database import asyncpg_dsn
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess, start_service
from devstack.postgres import with_database
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from llm_provider_service.testing.fake_llm_server import FakeLLMServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ESSAY_MARKER = "EssayMarker5b0e"
ANSWER_MARKER = "AnswerMarker5b0e"
KEY_MARKER = "sk-KeyMarker5b0e-0123456789abcdef"
MARKERS = (ESSAY_MARKER, ANSWER_MARKER, KEY_MARKER)
SERVICES = ("submission_service", "llm_provider_service", "cj_assessment_service")


@dataclass(frozen=True)
class Stack:
    kafka: str
    topic_prefix: str
    services: dict[str, ServiceProcess]
    fake_llm: FakeLLMServer


@pytest.fixture
async def stack(
    kafka_bootstrap_servers: str, postgres_server_url: str, tmp_path: Path
) -> AsyncIterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    databases = {
        "submission_service": f"{prefix}_submission",
        "cj_assessment_service": f"{prefix}_cj",
    }
    started: dict[str, ServiceProcess] = {}
    async with FakeLLMServer() as fake_llm:
        try:
            for name in SERVICES:
                env = {
                    "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
                    "DATABASE_URL": with_database(
                        postgres_server_url, databases.get(name, "postgres")
                    ),
                    "TOPIC_PREFIX": prefix,
                    "LOG_LEVEL": "DEBUG",
                    "LLM_DEFAULT_PROVIDER": "openai",
                    "OPENAI_API_KEY": KEY_MARKER,
                    "OPENAI_BASE_URL": fake_llm.openai_base_url,
                }
                started[name] = await start_service(
                    name,
                    env=env,
                    log_dir=tmp_path / "logs",
                    keep_provider_keys=True,
                    unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
                )
            yield Stack(kafka_bootstrap_servers, prefix, started, fake_llm)
        finally:
            for service in started.values():
                service.stop()
            admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
            try:
                for database in databases.values():
                    await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            finally:
                await admin.close()


async def _score_an_answer(submission_url: str) -> dict[str, Any]:
    headers = {"X-Anonymous-Token": str(uuid.uuid4())}
    answer = f"{ANSWER_MARKER}: recycling saves energy because melting cans costs less."
    async with httpx.AsyncClient(base_url=submission_url, timeout=10.0) as client:
        created = await client.post(
            "/api/assessments/responses",
            json={"question_id": "short-essay", "module_slug": "argument", "answer_text": answer},
            headers=headers,
        )
        created.raise_for_status()
        response_id = created.json()["id"]
        completed = await client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"answer_text": answer, "completed_at": datetime.now(UTC).isoformat()},
            headers=headers,
        )
        completed.raise_for_status()

        async def scores() -> list[dict[str, Any]]:
            listing = await client.get(
                "/api/assessments/responses",
                params={"module_slug": "argument", "question_id": "short-essay"},
                headers=headers,
            )
            listing.raise_for_status()
            found = [r for r in listing.json()["responses"] if r["id"] == response_id]
            return list(found[0]["scores"]) if found else []

        scored = await eventually(scores, timeout=120.0, interval=0.5, what="the rubric score")
    return scored[0]


class TestLogHygiene:
    async def test_no_essay_answer_or_key_reaches_any_log_line_at_debug_level(
        self, stack: Stack
    ) -> None:
        essays = [
            EssayToProcess(
                essay_id=f"essay-{i}",
                text_content=f"{ESSAY_MARKER} {i}: my summer was spent learning to sail.",
            )
            for i in range(4)
        ]
        request = build_cj_request(essays, entity_ref=f"hygiene-{uuid.uuid4().hex[:8]}")

        completed, score = await asyncio.gather(
            run_cj_batch(
                request,
                bootstrap_servers=stack.kafka,
                topic_prefix=stack.topic_prefix,
                cj_url=stack.services["cj_assessment_service"].url,
                timeout=180.0,
            ),
            _score_an_answer(stack.services["submission_service"].url),
        )
        for service in stack.services.values():
            service.stop()  # stop first: the last lines (repeat counts) are written at exit

        assert len(completed.rankings) == 4
        assert score["score_data"]["scores"]
        # The markers did travel: the fake provider saw the essays, the answer and the key.
        seen = " ".join(str(r.body) for r in stack.fake_llm.received)
        assert ESSAY_MARKER in seen
        assert ANSWER_MARKER in seen
        assert {r.headers.get("authorization") for r in stack.fake_llm.received} == {
            f"Bearer {KEY_MARKER}"
        }
        for name, service in stack.services.items():
            records = service.log_records()  # every line is a JSON object
            # Access lines are written only at DEBUG: the level did reach the service.
            assert any(r["logger"] == "hypercorn.access" for r in records), name
            text = service.log_path.read_text()
            for marker in MARKERS:
                assert marker not in text, f"{marker} in the log of {name}"
