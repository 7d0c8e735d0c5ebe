"""Reading identities from headers: JWT checks and anonymous tokens."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from common_core.runtime.http_auth import ClaimRules, TokenVerifier
from submission_service.adapters.identity import JwtIdentityReader
from submission_service.domain.errors import AuthenticationError
from submission_service.testing.harness import TEST_JWT_SECRET, user_token

RULES = ClaimRules(
    issuer="huleedu",
    audience="huleedu-submission",
    leeway_seconds=0,
    required=("exp", "iss", "aud", "sub"),
)
READER = JwtIdentityReader(TokenVerifier(RULES, secret=TEST_JWT_SECRET))
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestIdentify:
    async def test_bearer_token_gives_the_user(self) -> None:
        identity = await READER.identify(f"Bearer {user_token('alice')}", None)
        assert identity.user_id == "alice"

    async def test_bearer_wins_over_the_anonymous_token(self) -> None:
        identity = await READER.identify(f"Bearer {user_token('alice')}", str(uuid.uuid4()))
        assert identity.is_user

    async def test_anonymous_token_gives_the_learner(self) -> None:
        token = uuid.uuid4()
        assert (await READER.identify(None, str(token))).anonymous_token == token

    @pytest.mark.parametrize(
        ("header", "reason"),
        [
            (f"Bearer {user_token('a', expires_in=-10)}", "token_expired"),
            (f"Bearer {user_token('a', audience='x')}", "invalid_token"),
            (f"Bearer {user_token('a', issuer='x')}", "invalid_token"),
            (f"Bearer {user_token('a', secret='x' * 32)}", "invalid_token"),
            ("Bearer ", "invalid_authorization_header"),
            ("Token abc", "invalid_authorization_header"),
            ("Bearer not-a-jwt", "invalid_token"),
        ],
    )
    async def test_bad_tokens_fail_authentication(self, header: str, reason: str) -> None:
        with pytest.raises(AuthenticationError) as caught:
            await READER.identify(header, None)
        assert caught.value.reason == reason

    @pytest.mark.parametrize("header", ["", "   "])
    async def test_an_empty_authorization_is_malformed_even_with_an_anonymous_token(
        self, header: str
    ) -> None:
        with pytest.raises(AuthenticationError) as caught:
            await READER.identify(header, str(uuid.uuid4()))
        assert (caught.value.reason, caught.value.field) == (
            "invalid_authorization_header",
            "Authorization",
        )

    async def test_no_credentials_fail_authentication(self) -> None:
        with pytest.raises(AuthenticationError):
            await READER.identify(None, None)

    async def test_a_malformed_anonymous_token_fails_authentication(self) -> None:
        with pytest.raises(AuthenticationError) as caught:
            await READER.identify(None, "nope")
        assert caught.value.reason == "invalid_anonymous_token"
        assert caught.value.field == "X-Anonymous-Token"

    @pytest.mark.parametrize(
        "header", [f"Bearer {user_token('a', secret='x' * 32)}", "Bearer not-a-jwt", "Basic dTpw"]
    )
    async def test_an_invalid_authorization_is_refused_beside_a_valid_anonymous_token(
        self, header: str
    ) -> None:
        with pytest.raises(AuthenticationError):
            await READER.identify(header, str(uuid.uuid4()))


class TestKeySet:
    """The same AUTH_JWKS_* configuration as the other services, beside the HS256 secret."""

    def _reader(self) -> JwtIdentityReader:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        key_set = jwt.PyJWKSet.from_dict({"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]})
        return JwtIdentityReader(TokenVerifier(RULES, secret=TEST_JWT_SECRET, key_set=key_set))

    def _rs256(self, **claims: object) -> str:
        now = int(time.time())
        body = {"iss": "huleedu", "aud": "huleedu-submission", "exp": now + 60, **claims}
        return jwt.encode(body, RSA_KEY, algorithm="RS256", headers={"kid": "k1"})

    async def test_a_key_set_token_and_a_shared_secret_token_both_prove_a_user(self) -> None:
        reader = self._reader()
        assert (await reader.identify(f"Bearer {self._rs256(sub='bob')}", None)).user_id == "bob"
        hs256 = f"Bearer {user_token('alice')}"
        assert (await reader.identify(hs256, None)).user_id == "alice"

    async def test_a_key_set_token_needs_a_subject(self) -> None:
        with pytest.raises(AuthenticationError):
            await self._reader().identify(f"Bearer {self._rs256()}", None)
