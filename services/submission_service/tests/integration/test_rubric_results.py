"""The rubric-result consumer: scores stored and announced, duplicates ignored, errors recorded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.llm import LLMRubricResultV1
from common_core.runtime.kafka_producer import OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import Topic, dlq_topic_name
from submission_service.adapters.tables import assessment_scores, scoring_jobs
from submission_service.testing.harness import (
    ServiceUnderTest,
    anonymous_headers,
    events_for_key,
    rubric_result,
)

pytestmark = pytest.mark.integration


async def _completed_response(
    service: ServiceUnderTest, bootstrap: str, headers: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """Create and complete an answer; returns its id and the staged rubric request."""
    created = await service.answer(headers, "m1", "q1", answer_text="An answer.")
    response_id = str(created["id"])
    patched = await service.client.patch(
        f"/api/assessments/responses/{response_id}",
        json={"completed_at": "2026-11-22T09:00:00Z"},
        headers=headers,
    )
    assert patched.status_code == 200
    [request] = await events_for_key(
        bootstrap, service.topic(Topic.LLM_RUBRIC_REQUESTED), response_id
    )
    return response_id, request["data"]


async def _scores(service: ServiceUnderTest, headers: dict[str, str]) -> list[dict[str, Any]]:
    reply = await service.client.get("/api/assessments/responses", headers=headers)
    return [s for r in (await reply.get_json())["responses"] for s in r["scores"]]


async def _job(service: ServiceUnderTest, request_id: str) -> Any:
    async with service.engine.connect() as connection:
        return (
            await connection.execute(
                select(scoring_jobs).where(scoring_jobs.c.request_id == uuid.UUID(request_id))
            )
        ).one()


class TestRubricResults:
    async def test_result_is_stored_listed_and_announced(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = anonymous_headers()
        response_id, request = await _completed_response(service, kafka_bootstrap_servers, headers)

        await service.send_rubric_result(
            rubric_result(
                uuid.UUID(request["request_id"]), request["request_metadata"], overall=4.0
            )
        )

        [score] = await eventually(lambda: _scores(service, headers), what="score listed")
        assert score["model_id"] == "heuristic-v1"
        assert score["prompt_version"] == "rubric-v1"
        assert score["score_data"]["overall"] == 4.0
        assert score["score_data"]["scores"]["depth"] == 4
        [scored] = await events_for_key(
            kafka_bootstrap_servers, service.topic(Topic.ASSESSMENT_SCORED), response_id
        )
        assert scored["data"]["score_id"] == score["score_id"]
        assert scored["data"]["overall"] == 4.0
        assert (await _job(service, request["request_id"])).status == "completed"

    async def test_duplicate_callbacks_are_counted_once(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = anonymous_headers()
        response_id, request = await _completed_response(service, kafka_bootstrap_servers, headers)
        result = rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
        same_event = uuid.uuid4()

        await service.send_rubric_result(result, event_id=same_event)
        await service.send_rubric_result(result, event_id=same_event)  # redelivery
        await service.send_rubric_result(result)  # a second callback for the same request
        marker_headers = anonymous_headers()
        _, marker = await _completed_response(service, kafka_bootstrap_servers, marker_headers)
        await service.send_rubric_result(
            rubric_result(uuid.UUID(marker["request_id"]), marker["request_metadata"])
        )

        # The marker is published after the duplicates on the same partition: once it is
        # scored, every duplicate has been handled.
        await eventually(lambda: _scores(service, marker_headers), what="marker scored")
        async with service.engine.connect() as connection:
            count = (
                await connection.execute(
                    select(func.count()).where(
                        assessment_scores.c.response_id == uuid.UUID(response_id)
                    )
                )
            ).scalar_one()
        assert count == 1

    async def test_error_callback_marks_the_job_failed(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = anonymous_headers()
        _, request = await _completed_response(service, kafka_bootstrap_servers, headers)
        error = ErrorDetail(
            code=ErrorCode.TIMEOUT,
            message="provider timed out",
            correlation_id=uuid.uuid4(),
            service="llm_provider_service",
            operation="rubric",
            retryable=True,
        )

        await service.send_rubric_result(
            LLMRubricResultV1(
                request_id=uuid.UUID(request["request_id"]),
                request_metadata=request["request_metadata"],
                error_detail=error,
                provider="openai",
                model="gpt-4o-mini",
            )
        )

        job = await eventually(
            lambda: _job(service, request["request_id"]),
            until=lambda j: j.status == "failed",
            what="job failed",
        )
        assert job.error["code"] == "timeout"
        assert job.error["message"] == "provider timed out"
        assert await _scores(service, headers) == []

    async def test_unknown_request_is_acknowledged_without_change(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        await service.send_rubric_result(rubric_result(uuid.uuid4(), {}))
        headers = anonymous_headers()
        _, request = await _completed_response(service, kafka_bootstrap_servers, headers)
        await service.send_rubric_result(
            rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
        )

        # The consumer moved past the unknown request and scored the next one.
        assert await eventually(lambda: _scores(service, headers), what="next result scored")

    async def test_undecodable_results_are_dead_lettered_and_consumption_continues(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        topic = service.topic(Topic.LLM_RUBRIC_RESULT)
        await service.producer.send(OutgoingMessage(topic=topic, value=b"not json", key="x"))
        headers = anonymous_headers()
        _, request = await _completed_response(service, kafka_bootstrap_servers, headers)
        await service.send_rubric_result(
            rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
        )

        assert await eventually(lambda: _scores(service, headers), what="next result scored")
        dead = await read_topic(kafka_bootstrap_servers, dlq_topic_name(topic), expected=1)
        assert [r.value for r in dead] == [b"not json"]
