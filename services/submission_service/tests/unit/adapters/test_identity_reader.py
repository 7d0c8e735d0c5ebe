"""Reading identities from headers: JWT checks and anonymous tokens."""

from __future__ import annotations

import uuid

import pytest

from submission_service.adapters.identity import JwtIdentityReader
from submission_service.domain.errors import AuthenticationError
from submission_service.testing.harness import TEST_JWT_SECRET, user_token

READER = JwtIdentityReader(
    secret=TEST_JWT_SECRET, issuer="huleedu", audience="huleedu-submission", leeway_seconds=0
)


class TestIdentify:
    def test_bearer_token_gives_the_user(self) -> None:
        identity = READER.identify(f"Bearer {user_token('alice')}", None)
        assert identity.user_id == "alice"

    def test_bearer_wins_over_the_anonymous_token(self) -> None:
        identity = READER.identify(f"Bearer {user_token('alice')}", str(uuid.uuid4()))
        assert identity.is_user

    def test_anonymous_token_gives_the_learner(self) -> None:
        token = uuid.uuid4()
        assert READER.identify(None, str(token)).anonymous_token == token

    @pytest.mark.parametrize(
        ("header", "reason"),
        [
            (f"Bearer {user_token('a', expires_in=-10)}", "token_expired"),
            (f"Bearer {user_token('a', audience='x')}", "invalid_token"),
            (f"Bearer {user_token('a', issuer='x')}", "invalid_token"),
            (f"Bearer {user_token('a', secret='x' * 32)}", "invalid_token"),
            ("Bearer ", "invalid_authorization_header"),
            ("Token abc", "invalid_authorization_header"),
        ],
    )
    def test_bad_tokens_fail_authentication(self, header: str, reason: str) -> None:
        with pytest.raises(AuthenticationError) as caught:
            READER.identify(header, None)
        assert caught.value.reason == reason

    @pytest.mark.parametrize("header", ["", "   "])
    def test_an_empty_authorization_is_malformed_even_with_an_anonymous_token(
        self, header: str
    ) -> None:
        with pytest.raises(AuthenticationError) as caught:
            READER.identify(header, str(uuid.uuid4()))
        assert (caught.value.reason, caught.value.field) == (
            "invalid_authorization_header",
            "Authorization",
        )

    def test_no_credentials_fail_authentication(self) -> None:
        with pytest.raises(AuthenticationError):
            READER.identify(None, None)

    def test_a_malformed_anonymous_token_fails_authentication(self) -> None:
        with pytest.raises(AuthenticationError) as caught:
            READER.identify(None, "nope")
        assert caught.value.reason == "invalid_anonymous_token"
        assert caught.value.field == "X-Anonymous-Token"
