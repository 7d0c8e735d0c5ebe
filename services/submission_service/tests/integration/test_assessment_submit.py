"""Submitting a whole assessment: rule scoring, degraded mode, locking, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from submission_service.adapters.tables import scoring_jobs
from submission_service.testing.harness import ServiceUnderTest, anonymous_headers, user_headers

pytestmark = pytest.mark.integration

DEFINITION = "intro-writing"


async def _answer(
    service: ServiceUnderTest, headers: dict[str, str], module: str, question: str, text: str
) -> str:
    return str((await service.answer(headers, module, question, answer_text=text))["id"])


async def _submit(
    service: ServiceUnderTest,
    headers: dict[str, str],
    assessment_id: str,
    key: str,
    body: dict[str, Any] | None = None,
) -> Any:
    return await service.client.post(
        f"/api/assessments/{assessment_id}/submit",
        json=body or {},
        headers={**headers, "Idempotency-Key": key},
    )


async def _jobs(service: ServiceUnderTest, assessment_id: str) -> int:
    async with service.engine.connect() as connection:
        return int(
            (
                await connection.execute(
                    select(func.count()).where(
                        scoring_jobs.c.assessment_id == uuid.UUID(assessment_id)
                    )
                )
            ).scalar_one()
        )


def _by_question(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["question_id"]: r for r in results}


class TestSubmit:
    async def test_rule_questions_are_scored_inline_and_essays_queued(
        self, service: ServiceUnderTest
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        await _answer(service, headers, "foundations", "thesis-definition", "b")  # correct
        await _answer(service, headers, "foundations", "paragraph-structure", "c")  # wrong
        await _answer(service, headers, "foundations", "writing-experience", "weekly")
        await _answer(service, headers, "argument", "short-essay", "Digital books are cheaper.")
        assessment_id = await service.start(headers, DEFINITION)

        reply = await _submit(service, headers, assessment_id, "key-1")

        assert reply.status_code == 202
        body = await reply.get_json()
        assert body["status"] == "submitted"
        assert body["degraded"] is False
        results = _by_question(body["rule_results"])
        assert results["thesis-definition"]["score"] == 1.0
        assert results["thesis-definition"]["detail"]["correct"] is True
        assert results["paragraph-structure"]["score"] == 0.0
        assert results["paragraph-structure"]["detail"]["correct"] is False
        assert results["writing-experience"]["score"] == 0.5  # profile: full weight
        jobs = {j["job_type"]: j for j in body["essay_jobs"]}
        assert set(jobs) == {"gpt", "rag", "fusion"}  # one essay, three asynchronous stages
        assert all(j["question_id"] == "short-essay" for j in jobs.values())
        assert all(j["status"] == "queued" for j in jobs.values())
        assert await _jobs(service, assessment_id) == 3

    async def test_missing_answers_are_scored_as_missing(self, service: ServiceUnderTest) -> None:
        headers = anonymous_headers()
        await _answer(service, headers, "foundations", "thesis-definition", "b")
        assessment_id = await service.start(headers, DEFINITION)

        reply = await _submit(service, headers, assessment_id, "degraded")

        assert reply.status_code == 202
        body = await reply.get_json()
        assert body["degraded"] is True
        assert body["status"] == "completed"  # no essay to wait for
        assert {m["question_id"] for m in body["missing"]} == {
            "paragraph-structure",
            "writing-experience",
            "short-essay",
        }
        results = _by_question(body["rule_results"])
        assert results["paragraph-structure"] == {
            **results["paragraph-structure"],
            "status": "missing",
            "score": 0.0,
        }
        assert body["essay_jobs"] == []

    async def test_answers_are_locked_after_submit(self, service: ServiceUnderTest) -> None:
        headers = anonymous_headers()
        response_id = await _answer(service, headers, "foundations", "thesis-definition", "a")
        assessment_id = await service.start(headers, DEFINITION)
        assert (await _submit(service, headers, assessment_id, "lock")).status_code == 202

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}", json={"answer_text": "b"}, headers=headers
        )

        assert reply.status_code == 409
        error = await reply.get_json()
        assert error["code"] == "response_locked"
        assert "submitted" in error["message"]

    async def test_replay_with_the_same_key_returns_the_same_answer(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        await _answer(service, headers, "argument", "short-essay", "Printed books last longer.")
        assessment_id = await service.start(headers, DEFINITION)

        first = await _submit(service, headers, assessment_id, "same-key")
        second = await _submit(service, headers, assessment_id, "same-key")

        assert first.status_code == second.status_code == 202
        assert await first.get_json() == await second.get_json()
        assert await _jobs(service, assessment_id) == 3

    async def test_concurrent_submits_with_one_key_submit_once(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        await _answer(service, headers, "argument", "short-essay", "Both have merits.")
        assessment_id = await service.start(headers, DEFINITION)

        replies = await asyncio.gather(
            *(_submit(service, headers, assessment_id, "race") for _ in range(5))
        )

        assert {r.status_code for r in replies} == {202}
        bodies = [await r.get_json() for r in replies]
        assert all(b == bodies[0] for b in bodies)
        assert await _jobs(service, assessment_id) == 3

    async def test_same_key_with_another_body_is_a_conflict(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        assessment_id = await service.start(headers, DEFINITION)
        await _submit(service, headers, assessment_id, "reused", {"client_reference": "a"})

        reply = await _submit(service, headers, assessment_id, "reused", {"client_reference": "b"})

        assert reply.status_code == 409
        assert (await reply.get_json())["code"] == "idempotency_key_reused"

    async def test_second_submission_with_a_new_key_is_a_conflict(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        assessment_id = await service.start(headers, DEFINITION)
        await _submit(service, headers, assessment_id, "one")

        reply = await _submit(service, headers, assessment_id, "two")

        assert reply.status_code == 409
        assert (await reply.get_json())["code"] == "already_submitted"

    async def test_submit_needs_an_idempotency_key(self, service: ServiceUnderTest) -> None:
        headers = anonymous_headers()
        assessment_id = await service.start(headers, DEFINITION)

        reply = await service.client.post(
            f"/api/assessments/{assessment_id}/submit", json={}, headers=headers
        )

        assert reply.status_code == 400
        error = await reply.get_json()
        assert error["code"] == "invalid_header"
        assert error["field"] == "Idempotency-Key"

    async def test_another_identitys_assessment_is_not_found(
        self, service: ServiceUnderTest
    ) -> None:
        assessment_id = await service.start(anonymous_headers(), DEFINITION)

        reply = await _submit(service, anonymous_headers(), assessment_id, "k")

        assert reply.status_code == 404
        assert (await reply.get_json())["code"] == "assessment_not_found"

    async def test_unknown_definition_is_not_found(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments", json={"definition_id": "no-such-thing"}, headers=anonymous_headers()
        )

        assert reply.status_code == 404
        assert (await reply.get_json())["field"] == "definition_id"
