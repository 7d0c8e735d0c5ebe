"""Completion trigger (docs/contracts.md): only a PATCH giving `completed_at` a timestamp scores."""

from __future__ import annotations

from typing import Any

import pytest

from common_core.topics import Topic
from submission_service.testing.harness import (
    ServiceUnderTest,
    anonymous_headers,
    events_for_key,
    outbox_topics,
)

pytestmark = pytest.mark.integration


async def _create(service: ServiceUnderTest, headers: dict[str, str], **extra: Any) -> str:
    fields = {"answer_text": "Digital textbooks are cheaper and easier to update.", **extra}
    created = await service.answer(headers, "module-1", "q-essay", **fields)
    assert "scores" not in created  # no score is leaked in creation answers
    return str(created["id"])


class TestCompletionTrigger:
    async def test_patch_with_completed_at_triggers_scoring(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = anonymous_headers()
        response_id = await _create(service, headers)

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"completed_at": "2026-11-22T10:00:00Z"},
            headers=headers,
        )

        assert reply.status_code == 200
        body = await reply.get_json()
        assert body["scoring_requested"] is True
        assert body["completed_at"].startswith("2026-11-22T10:00:00")
        assert sorted(await outbox_topics(service.engine, response_id)) == sorted(
            [
                service.topic(Topic.LLM_RUBRIC_REQUESTED),
                service.topic(Topic.ASSESSMENT_RESPONSE_COMPLETED),
            ]
        )
        completed = await events_for_key(
            kafka_bootstrap_servers, service.topic(Topic.ASSESSMENT_RESPONSE_COMPLETED), response_id
        )
        assert completed[0]["data"]["response_id"] == response_id
        requests = await events_for_key(
            kafka_bootstrap_servers, service.topic(Topic.LLM_RUBRIC_REQUESTED), response_id
        )
        request = requests[0]["data"]
        assert request["callback_topic"] == service.topic(Topic.LLM_RUBRIC_RESULT)
        assert request["request_metadata"]["response_id"] == response_id
        assert request["request_id"] == completed[0]["data"]["scoring_request_id"]

    async def test_draft_patch_does_not_trigger(self, service: ServiceUnderTest) -> None:
        headers = anonymous_headers()
        response_id = await _create(service, headers)

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"answer_text": "a longer draft", "answer_metadata": {"autosave": True}},
            headers=headers,
        )

        assert reply.status_code == 200
        body = await reply.get_json()
        assert body["scoring_requested"] is False
        assert body["answer_text"] == "a longer draft"
        assert await outbox_topics(service.engine, response_id) == []

    @pytest.mark.parametrize("empty", ["", "null", None])
    async def test_empty_or_null_completed_at_does_not_trigger(
        self, service: ServiceUnderTest, empty: str | None
    ) -> None:
        headers = anonymous_headers()
        response_id = await _create(service, headers)

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"completed_at": empty},
            headers=headers,
        )

        assert reply.status_code == 200
        body = await reply.get_json()
        assert body["scoring_requested"] is False
        assert body["completed_at"] is None
        assert await outbox_topics(service.engine, response_id) == []

    async def test_post_never_triggers_even_with_completed_at(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        response_id = await _create(service, headers, completed_at="2026-11-22T10:00:00Z")

        assert await outbox_topics(service.engine, response_id) == []

    async def test_patch_returns_before_scoring(self, service: ServiceUnderTest) -> None:
        # Nobody answers rubric requests in this module: the PATCH must not wait for a score.
        headers = anonymous_headers()
        response_id = await _create(service, headers)

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}",
            json={"completed_at": "2026-11-22T11:00:00+02:00"},
            headers=headers,
        )

        assert reply.status_code == 200
        assert (await reply.get_json())["scoring_requested"] is True
        listing = await service.client.get("/api/assessments/responses", headers=headers)
        [listed] = (await listing.get_json())["responses"]
        assert listed["id"] == response_id
        assert listed["scores"] == []
