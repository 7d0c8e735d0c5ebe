"""Bad input gets a specific 4xx error `{code, message, field?}`, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common_core.limits import MAX_ANSWER_CHARS, MAX_ID_CHARS, MAX_METADATA_BYTES, NO_NUL_PATTERN
from submission_service.testing.harness import ServiceUnderTest, anonymous_headers

pytestmark = pytest.mark.integration

_NEW = '"question_id": "q", "module_slug": "m"'
_JSON = {"Content-Type": "application/json"}


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


async def _stored_answers(service: ServiceUnderTest, headers: dict[str, str]) -> list[Any]:
    listed = await service.client.get("/api/assessments/responses", headers=headers)
    assert listed.status_code == 200
    answers: list[Any] = (await listed.get_json())["responses"]
    return answers


class TestStorableText:
    """docs/limits.md: what PostgreSQL cannot store, or what breaks a documented limit, is refused
    naming the field, and nothing is stored."""

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            (f'{{{_NEW}, "answer_text": "an \\u0000 inside"}}', "answer_text"),
            (f'{{{_NEW}, "answer_text": "\\ud800"}}', "answer_text"),
            (f'{{{_NEW}, "answer_text": "{"x" * (MAX_ANSWER_CHARS + 1)}"}}', "answer_text"),
            ('{"question_id": "q\\u0000", "module_slug": "m"}', "question_id"),
            (f'{{"question_id": "q", "module_slug": "{"m" * (MAX_ID_CHARS + 1)}"}}', "module_slug"),
            (f'{{{_NEW}, "learning_outcome_id": "\\udfff"}}', "learning_outcome_id"),
            (f'{{{_NEW}, "answer_metadata": {{"k": ["\\u0000"]}}}}', "answer_metadata"),
            (f'{{{_NEW}, "answer_metadata": {{"\\ud800": 1}}}}', "answer_metadata"),
            (
                f'{{{_NEW}, "answer_metadata": {{"k": "{"x" * MAX_METADATA_BYTES}"}}}}',
                "answer_metadata",
            ),
        ],
    )
    async def test_a_new_answer_that_cannot_be_stored_is_refused(
        self, service: ServiceUnderTest, body: str, field: str
    ) -> None:
        headers = anonymous_headers()

        reply = await service.client.post(
            "/api/assessments/responses", data=body.encode(), headers={**headers, **_JSON}
        )

        assert reply.status_code == 422
        error = await reply.get_json()
        assert (error["code"], error["field"]) == ("validation_error", field)
        assert await _stored_answers(service, headers) == []

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ('{"answer_text": "\\u0000"}', "answer_text"),
            ('{"answer_text": "\\ud800"}', "answer_text"),
            ('{"content_id": "\\u0000"}', "content_id"),
        ],
    )
    async def test_an_update_that_cannot_be_stored_changes_nothing(
        self, service: ServiceUnderTest, body: str, field: str
    ) -> None:
        headers = anonymous_headers()
        created = await service.client.post(
            "/api/assessments/responses",
            json={"question_id": "q", "module_slug": "m", "answer_text": "kept"},
            headers=headers,
        )
        response_id = (await created.get_json())["id"]

        reply = await service.client.patch(
            f"/api/assessments/responses/{response_id}",
            data=body.encode(),
            headers={**headers, **_JSON},
        )

        assert reply.status_code == 422
        assert (await reply.get_json())["field"] == field
        [stored] = await _stored_answers(service, headers)
        assert (stored["answer_text"], stored["content_id"]) == ("kept", None)

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("module_slug=%00", "module_slug"),
            (f"question_id={'q' * (MAX_ID_CHARS + 1)}", "question_id"),
            ("module_slug=", "module_slug"),
        ],
    )
    async def test_query_parameters_are_held_to_the_same_limits(
        self, service: ServiceUnderTest, query: str, field: str
    ) -> None:
        reply = await service.client.get(
            f"/api/assessments/responses?{query}", headers=anonymous_headers()
        )

        assert reply.status_code == 400
        error = await reply.get_json()
        assert (error["code"], error["field"]) == ("invalid_query", field)

    async def test_a_nul_in_a_path_id_is_refused(self, service: ServiceUnderTest) -> None:
        reply = await service.client.patch(
            "/api/assessments/responses/%00", json={}, headers=anonymous_headers()
        )

        assert reply.status_code == 400
        error = await reply.get_json()
        assert (error["code"], error["field"]) == ("invalid_uuid", "response_id")

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
    async def test_numbers_jsonb_cannot_store_are_invalid_json(
        self, service: ServiceUnderTest, number: str
    ) -> None:
        headers = anonymous_headers()
        body = f'{{{_NEW}, "answer_metadata": {{"n": {number}}}}}'

        reply = await service.client.post(
            "/api/assessments/responses", data=body.encode(), headers={**headers, **_JSON}
        )

        assert reply.status_code == 400
        assert (await reply.get_json())["code"] == "invalid_json"
        assert await _stored_answers(service, headers) == []

    async def test_the_openapi_document_states_the_limits(self, service: ServiceUnderTest) -> None:
        document = await (await service.client.get("/openapi.json")).get_json()
        create = document["paths"]["/api/assessments/responses"]["post"]["requestBody"]
        fields = create["content"]["application/json"]["schema"]["properties"]
        listing = document["paths"]["/api/assessments/responses"]["get"]["parameters"]
        query = {parameter["name"]: parameter["schema"] for parameter in listing}
        identifier = {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_CHARS,
            "pattern": NO_NUL_PATTERN,
        }

        assert create["required"] is True
        assert fields["answer_text"]["maxLength"] == MAX_ANSWER_CHARS
        assert fields["answer_text"]["pattern"] == NO_NUL_PATTERN
        assert identifier.items() <= fields["question_id"].items()
        assert identifier in query["module_slug"]["anyOf"]
        assert fields["answer_metadata"]["propertyNames"] == {"pattern": NO_NUL_PATTERN}
        assert str(MAX_METADATA_BYTES) in fields["answer_metadata"]["description"]
        assert json.dumps(document).count("StorableJsonValue") >= 3
