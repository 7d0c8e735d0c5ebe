"""Create/list/claim with anonymous and user identities; nobody sees another identity's data."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from submission_service.testing.harness import (
    ServiceUnderTest,
    anonymous_headers,
    user_headers,
    user_token,
)

pytestmark = pytest.mark.integration


async def _create(
    service: ServiceUnderTest, headers: dict[str, str], question_id: str, module: str = "m1"
) -> dict[str, Any]:
    return await service.answer(headers, module, question_id, answer_text=question_id)


async def _list(
    service: ServiceUnderTest, headers: dict[str, str], query: str = ""
) -> list[dict[str, Any]]:
    reply = await service.client.get(f"/api/assessments/responses{query}", headers=headers)
    assert reply.status_code == 200
    responses: list[dict[str, Any]] = (await reply.get_json())["responses"]
    return responses


class TestCreateAndList:
    async def test_user_and_anonymous_see_only_their_own_answers(
        self, service: ServiceUnderTest
    ) -> None:
        user = user_headers(f"user-{uuid.uuid4()}")
        anonymous = anonymous_headers()
        mine = await _create(service, user, "q1")
        theirs = await _create(service, anonymous, "q1")

        assert mine["user_id"] is not None
        assert mine["anonymous_token"] is None
        assert theirs["anonymous_token"] is not None
        assert theirs["user_id"] is None
        assert [r["id"] for r in await _list(service, user)] == [mine["id"]]
        assert [r["id"] for r in await _list(service, anonymous)] == [theirs["id"]]

    async def test_listing_is_newest_first_and_filtered(self, service: ServiceUnderTest) -> None:
        headers = user_headers(f"user-{uuid.uuid4()}")
        first = await _create(service, headers, "q1", "m1")
        second = await _create(service, headers, "q1", "m1")  # a second attempt is a new row
        other = await _create(service, headers, "q2", "m2")

        assert [r["id"] for r in await _list(service, headers)] == [
            other["id"],
            second["id"],
            first["id"],
        ]
        assert [r["id"] for r in await _list(service, headers, "?module_slug=m1")] == [
            second["id"],
            first["id"],
        ]
        assert [r["id"] for r in await _list(service, headers, "?question_id=q2")] == [other["id"]]

    async def test_another_identitys_answer_is_not_found(self, service: ServiceUnderTest) -> None:
        owner = anonymous_headers()
        created = await _create(service, owner, "q1")

        for intruder in (anonymous_headers(), user_headers("someone-else")):
            reply = await service.client.patch(
                f"/api/assessments/responses/{created['id']}",
                json={"answer_text": "overwritten"},
                headers=intruder,
            )
            assert reply.status_code == 404
            body = await reply.get_json()
            assert body["code"] == "response_not_found"
            assert "answer_text" not in body
        [still] = await _list(service, owner)
        assert still["answer_text"] == "q1"


class TestClaim:
    async def test_claim_moves_answers_and_skips_questions_already_answered(
        self, service: ServiceUnderTest
    ) -> None:
        token = uuid.uuid4()
        anonymous = anonymous_headers(token)
        user = user_headers(f"user-{uuid.uuid4()}")
        await _create(service, user, "q1")
        await _create(service, anonymous, "q1")  # the user answered q1 already: skipped
        await _create(service, anonymous, "q2")
        await _create(service, anonymous, "q3")

        reply = await service.client.post(
            "/api/assessments/claim", json={"anonymous_token": str(token)}, headers=user
        )

        assert reply.status_code == 200
        assert await reply.get_json() == {"claimed": 2, "skipped": 1}
        assert sorted(r["question_id"] for r in await _list(service, user)) == ["q1", "q2", "q3"]
        assert [r["question_id"] for r in await _list(service, anonymous)] == ["q1"]

    async def test_claim_reads_the_token_from_the_header(self, service: ServiceUnderTest) -> None:
        token = uuid.uuid4()
        await _create(service, anonymous_headers(token), "q9")
        headers = {**user_headers(f"user-{uuid.uuid4()}"), "X-Anonymous-Token": str(token)}

        reply = await service.client.post("/api/assessments/claim", json={}, headers=headers)

        assert await reply.get_json() == {"claimed": 1, "skipped": 0}

    async def test_claim_needs_a_logged_in_user(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/claim",
            json={"anonymous_token": str(uuid.uuid4())},
            headers=anonymous_headers(),
        )

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="huleedu-submission"'
        assert (await reply.get_json())["code"] == "user_required"


EMPTY_AUTHORIZATION = {
    "code": "invalid_authorization_header",
    "message": "Authorization must be 'Bearer <JWT>'",
    "field": "Authorization",
}


class TestCredentials:
    @pytest.mark.parametrize(
        ("authorization", "code", "bearer_error"),
        [
            (f"Bearer {user_token('u', expires_in=-3600)}", "token_expired", "invalid_token"),
            (
                f"Bearer {user_token('u', secret='another-secret-of-enough-length!')}",
                "invalid_token",
                "invalid_token",
            ),
            (
                f"Bearer {user_token('u', audience='someone-else')}",
                "invalid_token",
                "invalid_token",
            ),
            (f"Bearer {user_token('u', issuer='evil')}", "invalid_token", "invalid_token"),
            ("Bearer not.a.jwt", "invalid_token", "invalid_token"),
            ("Basic dXNlcjpwYXNz", "invalid_authorization_header", "invalid_request"),
        ],
    )
    async def test_bad_jwts_are_refused(
        self, service: ServiceUnderTest, authorization: str, code: str, bearer_error: str
    ) -> None:
        challenge = f'Bearer realm="huleedu-submission", error="{bearer_error}"'

        reply = await service.client.get(
            "/api/assessments/responses", headers={"Authorization": authorization}
        )

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == challenge
        assert (await reply.get_json())["code"] == code

    async def test_missing_identity_is_refused(self, service: ServiceUnderTest) -> None:
        reply = await service.client.get("/api/assessments/responses")

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="huleedu-submission"'
        assert (await reply.get_json())["code"] == "authentication_required"

    @pytest.mark.parametrize("token", ["not-a-uuid", "12345678-1234-1234-1234-12345678901z", "{}"])
    async def test_a_malformed_anonymous_token_is_refused(
        self, service: ServiceUnderTest, token: str
    ) -> None:
        reply = await service.client.get(
            "/api/assessments/responses", headers={"X-Anonymous-Token": token}
        )

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="huleedu-submission"'
        body = await reply.get_json()
        assert body == {
            "code": "invalid_anonymous_token",
            "message": "X-Anonymous-Token must be a UUID",
            "field": "X-Anonymous-Token",
        }

    async def test_an_empty_authorization_is_refused_beside_an_anonymous_token(
        self, service: ServiceUnderTest
    ) -> None:
        reply = await service.client.get(
            "/api/assessments/responses", headers={"Authorization": "", **anonymous_headers()}
        )

        assert reply.status_code == 401
        assert await reply.get_json() == EMPTY_AUTHORIZATION

    async def test_an_empty_authorization_cannot_claim(self, service: ServiceUnderTest) -> None:
        reply = await service.client.post(
            "/api/assessments/claim",
            json={},
            headers={"Authorization": "", **anonymous_headers()},
        )

        assert reply.status_code == 401
        assert await reply.get_json() == EMPTY_AUTHORIZATION


# A credential that proves nothing is refused whatever else the request carries: a valid
# anonymous token beside it never lets the request through as that learner.
INVALID_AUTHORIZATIONS = [
    f"Bearer {user_token('mallory', secret='y' * 32)}",
    f"Bearer {user_token('mallory', expires_in=-60)}",
    "Bearer not-a-jwt",
    "Basic bWFsbG9yeTpwdw==",
]


class TestAmbiguousCredentials:
    @pytest.mark.parametrize("authorization", INVALID_AUTHORIZATIONS)
    async def test_creating_an_assessment_with_a_bad_bearer_beside_an_anonymous_token_is_refused(
        self, service: ServiceUnderTest, authorization: str
    ) -> None:
        headers = {**anonymous_headers(), "Authorization": authorization}
        reply = await service.client.post(
            "/api/assessments", json={"definition_id": "intro-writing"}, headers=headers
        )

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="huleedu-submission"')

    @pytest.mark.parametrize("authorization", INVALID_AUTHORIZATIONS)
    async def test_an_assessments_status_with_a_bad_bearer_beside_its_anonymous_token_is_refused(
        self, service: ServiceUnderTest, authorization: str
    ) -> None:
        anonymous = anonymous_headers()
        created = await service.client.post(
            "/api/assessments", json={"definition_id": "intro-writing"}, headers=anonymous
        )
        assert created.status_code == 201
        assessment_id = (await created.get_json())["assessment_id"]
        own = await service.client.get(
            f"/api/assessments/{assessment_id}/status", headers=anonymous
        )
        assert own.status_code == 200

        reply = await service.client.get(
            f"/api/assessments/{assessment_id}/status",
            headers={**anonymous, "Authorization": authorization},
        )

        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"].startswith('Bearer realm="huleedu-submission"')
