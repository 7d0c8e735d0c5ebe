"""Bad input gets a specific 4xx error `{code, message, field?}`, never a 5xx."""

from __future__ import annotations

import pytest

from submission_service.testing.harness import ServiceUnderTest, anonymous_headers

pytestmark = pytest.mark.integration


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"module_slug": "m1", "answer_text": "x"}, "question_id"),
            ({"question_id": 5, "module_slug": "m1"}, "question_id"),
            ({"question_id": "q", "module_slug": "m1", "answer_text": ["x"]}, "answer_text"),
            ({"question_id": "q", "module_slug": "m1", "answer_metadata": "x"}, "answer_metadata"),
            (
                {"question_id": "q", "module_slug": "m1", "completed_at": "yesterday"},
                "completed_at",
            ),
            ({"question_id": "q", "module_slug": "m1", "unknown": 1}, "unknown"),
        ],
    )
    async def test_invalid_bodies_name_the_field(
        self, service: ServiceUnderTest, body: dict[str, object], field: str
    ) -> None:
        reply = await service.client.post(
            "/api/assessments/responses", json=body, headers=anonymous_headers()
        )

        assert reply.status_code == 422
        error = await reply.get_json()
        assert error["code"] == "validation_error"
        assert error["field"] == field

    async def test_oversized_body_is_refused(self, service: ServiceUnderTest) -> None:
        big = "x" * (service.settings.max_body_bytes + 1)
        reply = await service.client.post(
            "/api/assessments/responses",
            json={"question_id": "q", "module_slug": "m", "answer_text": big},
            headers=anonymous_headers(),
        )

        assert reply.status_code == 413
        assert (await reply.get_json())["code"] == "payload_too_large"

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("PATCH", "/api/assessments/responses/not-a-uuid"),
            ("GET", "/api/assessments/12345/status"),
            ("POST", "/api/assessments/xyz/webhook"),
        ],
    )
    async def test_bad_uuids_in_paths(
        self, service: ServiceUnderTest, method: str, path: str
    ) -> None:
        reply = await service.client.open(
            path,
            method=method,
            json={"answer_text": "x"} if method == "PATCH" else {"url": "https://example.org"},
            headers=anonymous_headers(),
        )

        assert reply.status_code == 400
        assert (await reply.get_json())["code"] == "invalid_uuid"

    async def test_malformed_json_is_a_client_error(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/responses",
            data=b"{not json",
            headers={**anonymous_headers(), "Content-Type": "application/json"},
        )

        assert reply.status_code == 400
        assert (await reply.get_json())["code"] == "invalid_json"

    async def test_body_that_is_not_utf8_is_invalid_json(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/responses",
            data=b"\xff\xfe{}",
            headers={**anonymous_headers(), "Content-Type": "application/json"},
        )

        assert reply.status_code == 400
        assert (await reply.get_json())["code"] == "invalid_json"

    async def test_non_json_content_type_is_a_client_error(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/responses",
            data=b"question_id=q",
            headers={**anonymous_headers(), "Content-Type": "text/plain"},
        )

        assert reply.status_code == 415
        assert (await reply.get_json())["code"] == "unsupported_media_type"

    async def test_a_json_array_is_a_validation_error(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/responses", json=[1, 2], headers=anonymous_headers()
        )

        assert reply.status_code == 422
        assert (await reply.get_json())["code"] == "validation_error"

    async def test_submit_with_malformed_json_is_invalid_json(
        self, service: ServiceUnderTest
    ) -> None:
        headers = anonymous_headers()
        started = await service.client.post(
            "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
        )
        aid = (await started.get_json())["assessment_id"]

        reply = await service.client.post(
            f"/api/assessments/{aid}/submit",
            data=b"{oops",
            headers={**headers, "Idempotency-Key": "k", "Content-Type": "application/json"},
        )

        assert reply.status_code == 400
        assert (await reply.get_json())["code"] == "invalid_json"

    async def test_unknown_route_is_json(self, service: ServiceUnderTest) -> None:
        reply = await service.client.get("/api/nothing-here")

        assert reply.status_code == 404
        assert (await reply.get_json())["code"] == "not_found"
