"""Status stages progressing to completion, and signed webhook deliveries with retries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.llm import LLMRubricResultV1
from common_core.testing import eventually
from common_core.topics import Topic
from submission_service.di import make_container
from submission_service.domain.webhooks import SIGNATURE_HEADER, verify_signature
from submission_service.entrypoints.http import create_app
from submission_service.testing.harness import (
    ServiceUnderTest,
    events_for_key,
    rubric_result,
    settings_for_tests,
    user_headers,
)
from submission_service.testing.webhooks import receiving

pytestmark = pytest.mark.integration

AnswerFor = Callable[[dict[str, Any]], LLMRubricResultV1]


ESSAY = "Digital textbooks are cheaper, lighter and easier to keep current."


async def _started_essay(service: ServiceUnderTest, headers: dict[str, str]) -> tuple[str, str]:
    """Answer the essay and start an attempt; returns (response, assessment) ids."""
    created = await service.answer(headers, "argument", "short-essay", answer_text=ESSAY)
    return str(created["id"]), await service.start(headers)


async def _submit(service: ServiceUnderTest, headers: dict[str, str], aid: str) -> None:
    submitted = await service.client.post(
        f"/api/assessments/{aid}/submit", json={}, headers={**headers, "Idempotency-Key": aid}
    )
    assert submitted.status_code == 202, await submitted.get_data()


async def _answer_requests(
    service: ServiceUnderTest, bootstrap: str, response_id: str, answer: AnswerFor
) -> None:
    """Play the LLM provider: answer the essay's gpt and rag requests with `answer(request)`."""
    request_events = await events_for_key(
        bootstrap, service.topic(Topic.LLM_RUBRIC_REQUESTED), response_id, expected=2
    )
    assert len(request_events) == 2
    for request_event in request_events:
        await service.send_rubric_result(answer(request_event["data"]))


def _scored(data: dict[str, Any]) -> LLMRubricResultV1:
    return rubric_result(uuid.UUID(data["request_id"]), data["request_metadata"])


def _unparseable(data: dict[str, Any]) -> LLMRubricResultV1:
    return LLMRubricResultV1(
        request_id=uuid.UUID(data["request_id"]),
        request_metadata=data["request_metadata"],
        error_detail=ErrorDetail(
            code=ErrorCode.PARSE_ERROR,
            message="model answer was not JSON",
            correlation_id=uuid.uuid4(),
            service="llm_provider_service",
            operation="rubric",
        ),
        provider="openai",
        model="gpt-4o-mini",
    )


async def _completed(
    service: ServiceUnderTest, headers: dict[str, str], aid: str
) -> dict[str, Any]:
    return await eventually(
        lambda: service.status(headers, aid),
        until=lambda s: s["status"] == "completed",
        what="assessment completed",
    )


def _stages(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in status["stages"]}


class TestStatus:
    async def test_an_unsubmitted_assessment_has_no_stages(self, service: ServiceUnderTest) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        _, aid = await _started_essay(service, headers)

        status = await service.status(headers, aid)

        assert (status["status"], status["stages"], status["progress"]) == ("open", [], 0.0)

    async def test_llm_stages_are_in_progress_once_their_requests_are_delivered(
        self, service: ServiceUnderTest
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        _, aid = await _started_essay(service, headers)

        await _submit(service, headers, aid)

        status = await eventually(
            lambda: service.status(headers, aid),
            until=lambda s: (
                _stages(s)["gpt"]["status"] == _stages(s)["rag"]["status"] == "in_progress"
            ),
            what="gpt and rag in progress once their requests are delivered",
        )
        stages = _stages(status)
        assert stages["rule_score"]["status"] == "completed"
        assert stages["fusion"]["status"] == "queued"
        assert {name: stage["weight"] for name, stage in stages.items()} == {
            "rule_score": 0.2,
            "gpt": 0.3,
            "rag": 0.3,
            "fusion": 0.2,
        }
        assert status["progress"] == pytest.approx(0.2)

    async def test_scored_stages_complete_the_assessment_with_the_fused_essay_score(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        response_id, aid = await _started_essay(service, headers)
        await _submit(service, headers, aid)

        await _answer_requests(service, kafka_bootstrap_servers, response_id, _scored)

        status = await _completed(service, headers, aid)
        assert all(s["status"] == "completed" for s in status["stages"])
        assert status["progress"] == 1.0
        assert {j["status"] for j in status["jobs"]} == {"completed"}
        [essay] = status["result"]["essays"]
        # gpt and rag both 4; the short answer's rule score pulls the fused score below 4.
        fused = essay["fusion"]["overall"]
        assert fused == pytest.approx(0.2 * essay["rule_score"]["score"] + 0.8 * 4.0, abs=1e-3)
        assert status["result"]["by_type"]["essay"] == {
            "score": pytest.approx((fused - 1) / 4 * 2.0, abs=1e-5),
            "max_score": 2.0,
        }

    async def test_failed_essay_job_completes_the_assessment_degraded(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        response_id, aid = await _started_essay(service, headers)
        await _submit(service, headers, aid)

        await _answer_requests(service, kafka_bootstrap_servers, response_id, _unparseable)

        status = await _completed(service, headers, aid)
        jobs = {j["job_type"]: j for j in status["jobs"]}
        assert {t: j["status"] for t, j in jobs.items()} == {
            "gpt": "failed",
            "rag": "failed",
            "fusion": "failed",  # nothing to fuse: rules alone do not score an essay
        }
        assert jobs["gpt"]["error"]["code"] == "parse_error"
        assert status["result"]["degraded"] is True
        assert status["result"]["essays_failed"] == 1
        assert _stages(status)["gpt"]["status"] == "failed"
        assert _stages(status)["fusion"]["status"] == "failed"

    async def test_another_identity_cannot_read_status_or_register_webhooks(
        self, service: ServiceUnderTest
    ) -> None:
        _, aid = await _started_essay(service, user_headers(f"owner-{uuid.uuid4()}"))
        intruder = user_headers(f"intruder-{uuid.uuid4()}")

        status = await service.client.get(f"/api/assessments/{aid}/status", headers=intruder)
        hook = await service.client.post(
            f"/api/assessments/{aid}/webhook",
            json={"url": "https://example.org/hook"},
            headers=intruder,
        )

        assert (status.status_code, hook.status_code) == (404, 404)
        assert (await status.get_json())["code"] == "assessment_not_found"


class TestCompletionWebhook:
    async def test_a_failed_delivery_is_retried_and_delivered_signed_with_the_result(
        self, service: ServiceUnderTest, kafka_bootstrap_servers: str, tmp_path: Path
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        response_id, aid = await _started_essay(service, headers)
        async with receiving(tmp_path, replies=(500, 200)) as receiver:
            registered = await service.client.post(
                f"/api/assessments/{aid}/webhook", json={"url": receiver.url}, headers=headers
            )
            assert registered.status_code == 201, await registered.get_data()
            secret = (await registered.get_json())["secret"]
            await _submit(service, headers, aid)
            await _answer_requests(service, kafka_bootstrap_servers, response_id, _scored)

            status = await eventually(
                lambda: service.status(headers, aid),
                until=lambda s: (
                    s["webhooks"][0]["deliveries"]
                    and s["webhooks"][0]["deliveries"][0]["status"] == "delivered"
                ),
                what="webhook delivered after a retry",
            )

        [delivery] = status["webhooks"][0]["deliveries"]
        assert [a["http_status"] for a in delivery["attempts"]] == [500, 200]
        assert [a["succeeded"] for a in delivery["attempts"]] == [False, True]
        hook_headers, body = receiver.calls[-1]
        assert verify_signature(secret, hook_headers[SIGNATURE_HEADER.lower()], body)
        assert not verify_signature("wrong-secret", hook_headers[SIGNATURE_HEADER.lower()], body)
        delivered = json.loads(body)
        assert (delivered["event"], delivered["assessment_id"]) == ("assessment.completed", aid)
        [essay] = status["result"]["essays"]
        assert delivered["result"]["essays"][0]["fusion"] == essay["fusion"]


class TestWebhookTargets:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
            "http://192.168.1.10/hook",
            "http://0.0.0.0/hook",
        ],
    )
    async def test_internal_addresses_are_refused(
        self, service: ServiceUnderTest, url: str
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        _, aid = await _started_essay(service, headers)

        reply = await service.client.post(
            f"/api/assessments/{aid}/webhook", json={"url": url}, headers=headers
        )

        assert reply.status_code == 403
        error = await reply.get_json()
        assert error["code"] == "webhook_target_refused"
        assert error["field"] == "url"

    async def test_a_name_resolving_to_loopback_is_refused_unless_allowlisted(
        self, service: ServiceUnderTest, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        strict = settings_for_tests(
            database_url,
            kafka_bootstrap_servers,
            topic_prefix=service.settings.topic_prefix,
            webhook_allowlist=[],
        )
        container = make_container(strict)
        try:
            client = create_app(container, strict).test_client()
            headers = user_headers(f"learner-{uuid.uuid4()}")
            started = await client.post(
                "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
            )
            aid = (await started.get_json())["assessment_id"]

            reply = await client.post(
                f"/api/assessments/{aid}/webhook",
                json={"url": "http://localhost:9/hook"},
                headers=headers,
            )

            assert reply.status_code == 403
            error = await reply.get_json()
            assert error["code"] == "webhook_target_refused"
            assert "loopback" in error["message"]
        finally:
            await container.close()

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.org/x",
            "not a url",
            "http://user:pw@example.org/",
            "/relative",
            "http://example.org:0/",
            "http://example.org:65536/",
            "http://[::g]/",
            "http://exa mple.org/",
        ],
    )
    async def test_non_http_urls_are_invalid(self, service: ServiceUnderTest, url: str) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        _, aid = await _started_essay(service, headers)

        reply = await service.client.post(
            f"/api/assessments/{aid}/webhook", json={"url": url}, headers=headers
        )

        assert reply.status_code == 422
        error = await reply.get_json()
        assert (error["code"], error["field"]) == ("validation_error", "url")
