"""End to end: a completed answer is scored by the real LLM provider service (heuristic judge);
the score appears in the listing and as an `AssessmentScoredV1` event."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from common_core.events.assessment import AssessmentScoredV1
from common_core.events.envelope import decode_event
from common_core.testing import eventually, read_topic
from common_core.testing.service_process import running_service
from common_core.topics import Topic, topic_name
from submission_service.testing.harness import TEST_JWT_SECRET, TEST_WEBHOOK_SECRET_KEY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANSWER = (
    "Schools should move to digital textbooks, but carefully. Digital books cost less to "
    "update, so students always read current material, and they weigh nothing in a backpack. "
    "However, screens can distract younger learners, and not every family has a reliable "
    "device at home. A sensible plan would therefore provide devices through the school and "
    "keep printed copies for reading-heavy subjects."
)


async def test_completed_answer_is_scored_by_the_llm_provider_service(
    database_url: str, postgres_server_url: str, kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    prefix = f"e2e{uuid.uuid4().hex[:10]}"
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "TOPIC_PARTITIONS": "1",
        "LOG_LEVEL": "WARNING",
    }
    submission_env = {
        **common,
        "DATABASE_URL": database_url,
        "JWT_SECRET": TEST_JWT_SECRET,
        "WEBHOOK_SECRET_KEYS": TEST_WEBHOOK_SECRET_KEY,
    }
    # The LLM provider's own database on the server (huleedu_llm_provider), not submission's.
    llm_env = {**common, "DATABASE_URL": postgres_server_url, "LLM_DEFAULT_PROVIDER": "heuristic"}
    headers = {"X-Anonymous-Token": str(uuid.uuid4())}

    async with contextlib.AsyncExitStack() as stack:
        submission = await stack.enter_async_context(
            running_service("submission_service", env=submission_env, log_dir=tmp_path)
        )
        # Provider API keys are always left out by the helper; no inherited default model either.
        await stack.enter_async_context(
            running_service(
                "llm_provider_service",
                env=llm_env,
                log_dir=tmp_path,
                unset_prefixes=("LLM_DEFAULT_MODEL",),
            )
        )
        async with httpx.AsyncClient(base_url=submission.url, headers=headers) as client:
            created = await client.post(
                "/api/assessments/responses",
                json={
                    "module_slug": "argument",
                    "question_id": "short-essay",
                    "answer_text": ANSWER,
                },
            )
            assert created.status_code == 201
            response_id = created.json()["id"]
            patched = await client.patch(
                f"/api/assessments/responses/{response_id}",
                json={"completed_at": "2026-11-22T12:00:00Z"},
            )
            assert patched.status_code == 200
            assert patched.json()["scoring_requested"] is True

            async def listed_scores() -> list[dict[str, Any]]:
                reply = await client.get("/api/assessments/responses")
                return [s for r in reply.json()["responses"] for s in r["scores"]]

            [score] = await eventually(listed_scores, timeout=90, what="score in the listing")

    assert score["score_data"]["provider"] == "heuristic"
    assert 1 <= score["score_data"]["overall"] <= 5
    assert score["model_id"]
    assert score["prompt_version"]
    scored_topic = topic_name(Topic.ASSESSMENT_SCORED, prefix)
    records = await read_topic(kafka_bootstrap_servers, scored_topic, expected=1, timeout=30)
    [event] = [decode_event(r.value, AssessmentScoredV1) for r in records if r.value]
    assert event.event_type == scored_topic
    assert str(event.data.response_id) == response_id
    assert str(event.data.score_id) == score["score_id"]
    assert event.data.provider == "heuristic"
