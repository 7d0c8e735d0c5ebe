"""Bearer tokens on the `/api` routes: JWT verification (HS256 secret, JWKS file, JWKS URL),
scopes and the 401/403 answers of `protect_api`."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from quart import Quart

from common_core.runtime.http import register_operational_routes
from common_core.runtime.http_auth import (
    ApiScopes,
    ClaimRules,
    SigningKeysUnavailableError,
    TokenRejectedError,
    TokenVerifier,
    api_token_verifier,
    bearer_token,
    protect_api,
    sign_token,
    token_scopes,
)
from common_core.runtime.settings import ServiceSettings

SECRET = "a-test-secret-of-at-least-32-bytes-long"
RULES = ClaimRules(issuer="huleedu", audience="huleedu-cj", leeway_seconds=0)
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": "u1", "iss": "huleedu", "aud": "huleedu-cj", "exp": now + 600, "scope": "x"}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(_public_jwk(key))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def _public_jwk(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    return jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())


def _key_set() -> dict[str, Any]:
    return {"keys": [_jwk(RSA_KEY, "rsa-1", "RS256"), _jwk(EC_KEY, "ec-1", "ES256")]}


def _signed(key: Any, alg: str, kid: str | None, **changes: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(_claims(**changes), key, algorithm=alg, headers=headers)


class TestSharedSecret:
    async def test_a_valid_token_yields_its_claims(self) -> None:
        verifier = TokenVerifier(RULES, secret=SECRET)
        claims = await verifier.verify(jwt.encode(_claims(), SECRET, algorithm="HS256"))
        assert claims["sub"] == "u1"

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"exp": int(time.time()) - 60}, "token_expired"),
            ({"iss": "someone-else"}, "invalid_token"),
            ({"aud": "huleedu-llm"}, "invalid_token"),
            ({"exp": None}, "invalid_token"),
        ],
    )
    async def test_claims_are_checked(self, changes: dict[str, Any], reason: str) -> None:
        verifier = TokenVerifier(RULES, secret=SECRET)
        with pytest.raises(TokenRejectedError) as caught:
            await verifier.verify(jwt.encode(_claims(**changes), SECRET, algorithm="HS256"))
        assert caught.value.reason == reason

    async def test_another_secret_or_no_signature_is_refused(self) -> None:
        verifier = TokenVerifier(RULES, secret=SECRET)
        forged = jwt.encode(_claims(), "another-secret-of-at-least-32-bytes!", algorithm="HS256")
        unsigned = jwt.encode(_claims(), "", algorithm="none")
        for token in (forged, unsigned, "not-a-jwt"):
            with pytest.raises(TokenRejectedError):
                await verifier.verify(token)


class TestKeySetFile:
    @pytest.mark.parametrize(
        ("key", "alg", "kid"), [(RSA_KEY, "RS256", "rsa-1"), (EC_KEY, "ES256", "ec-1")]
    )
    async def test_tokens_signed_by_a_published_key_are_valid(
        self, key: Any, alg: str, kid: str
    ) -> None:
        verifier = TokenVerifier(RULES, key_set=jwt.PyJWKSet.from_dict(_key_set()))
        assert (await verifier.verify(_signed(key, alg, kid)))["sub"] == "u1"

    async def test_unknown_key_missing_kid_and_foreign_keys_are_refused(self) -> None:
        verifier = TokenVerifier(RULES, key_set=jwt.PyJWKSet.from_dict(_key_set()))
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tokens = [
            _signed(RSA_KEY, "RS256", "missing"),
            _signed(RSA_KEY, "RS256", None),
            _signed(stranger, "RS256", "rsa-1"),
            _signed(EC_KEY, "ES256", "rsa-1"),  # the RSA key's kid on an EC signature
        ]
        for token in tokens:
            with pytest.raises(TokenRejectedError):
                await verifier.verify(token)

    async def test_an_hs256_token_is_refused_without_a_shared_secret(self) -> None:
        # Algorithm confusion: the public key as an HMAC secret must not verify anything.
        verifier = TokenVerifier(RULES, key_set=jwt.PyJWKSet.from_dict(_key_set()))
        with pytest.raises(TokenRejectedError):
            await verifier.verify(jwt.encode(_claims(), SECRET, algorithm="HS256"))

    def test_the_settings_read_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(_key_set()))
        verifier = api_token_verifier(ServiceSettings(auth_jwks_file=path))
        assert verifier is not None
        assert verifier.algorithms == ("RS256", "ES256")

    def test_an_unreadable_file_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "jwks.json"
        path.write_text("{not json")
        with pytest.raises(ValueError, match="AUTH_JWKS_FILE"):
            api_token_verifier(ServiceSettings(auth_jwks_file=path))


class _JwksHandler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_args: Any) -> None:
        """Keep the test output quiet."""


@contextlib.contextmanager
def _jwks_server(document: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    requests: list[str] = []

    class Handler(_JwksHandler):
        body = json.dumps(document).encode()

        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestKeySetUrl:
    async def test_keys_are_fetched_once_and_cached(self) -> None:
        with _jwks_server(_key_set()) as (url, requests):
            verifier = api_token_verifier(
                ServiceSettings(auth_jwks_url=url, auth_audience="huleedu-cj")
            )
            assert verifier is not None
            for _ in range(3):
                assert (await verifier.verify(_signed(RSA_KEY, "RS256", "rsa-1")))["sub"] == "u1"
            assert (await verifier.verify(_signed(EC_KEY, "ES256", "ec-1")))["sub"] == "u1"
        assert requests == ["/jwks.json"]

    async def test_an_unreachable_endpoint_is_an_outage_not_a_bad_token(self) -> None:
        with _jwks_server(_key_set()) as (url, _):
            pass  # stopped: the port refuses connections now
        verifier = api_token_verifier(
            ServiceSettings(auth_jwks_url=url, auth_audience="huleedu-cj")
        )
        assert verifier is not None
        with pytest.raises(SigningKeysUnavailableError):
            await verifier.verify(_signed(RSA_KEY, "RS256", "rsa-1"))


class TestScopesAndHeader:
    def test_scope_and_scp_claims_both_count(self) -> None:
        assert token_scopes({"scope": "cj:read  cj:write"}) == {"cj:read", "cj:write"}
        assert token_scopes({"scp": ["llm:read", 3]}) == {"llm:read"}
        assert token_scopes({"scp": "cj:read"}) == {"cj:read"}
        assert token_scopes({}) == frozenset()

    @pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer   ", "token"])
    def test_a_header_that_is_not_bearer_is_an_invalid_request(self, header: str) -> None:
        with pytest.raises(TokenRejectedError) as caught:
            bearer_token(header)
        assert caught.value.reason == "invalid_request"


def _app() -> Quart:
    app = Quart("protected")
    register_operational_routes(app, {})
    verifier = TokenVerifier(RULES, secret=SECRET)
    protect_api(app, verifier, ApiScopes(read="cj:read", write="cj:write"), realm="cj")

    @app.get("/api/v1/things")
    async def things() -> dict[str, str]:
        return {"status": "read"}

    @app.post("/api/v1/things")
    async def add_thing() -> dict[str, str]:
        return {"status": "written"}

    return app


def _bearer(*scopes: str, **changes: Any) -> dict[str, str]:
    token = sign_token(SECRET, subject="u1", scopes=scopes, issuer="huleedu", audience="huleedu-cj")
    if changes:
        token = jwt.encode(_claims(scope=" ".join(scopes), **changes), SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


class TestProtectApi:
    async def test_a_read_needs_the_read_scope_and_a_write_the_write_scope(self) -> None:
        client = _app().test_client()
        assert (await client.get("/api/v1/things", headers=_bearer("cj:read"))).status_code == 200
        refused = await client.post("/api/v1/things", headers=_bearer("cj:read"))
        assert refused.status_code == 403
        assert refused.headers["WWW-Authenticate"] == (
            'Bearer realm="cj", error="insufficient_scope", scope="cj:write"'
        )
        assert (await refused.get_json())["code"] == "insufficient_scope"
        written = await client.post("/api/v1/things", headers=_bearer("cj:read", "cj:write"))
        assert written.status_code == 200

    async def test_a_missing_token_gets_a_bare_challenge(self) -> None:
        reply = await _app().test_client().get("/api/v1/things")
        assert reply.status_code == 401
        assert reply.headers["WWW-Authenticate"] == 'Bearer realm="cj"'
        assert await reply.get_json() == {
            "code": "authentication_required",
            "message": "send Authorization: Bearer <JWT>",
        }

    async def test_a_bad_or_expired_token_is_an_invalid_token(self) -> None:
        client = _app().test_client()
        expired = await client.get(
            "/api/v1/things", headers=_bearer("cj:read", exp=int(time.time()) - 60)
        )
        forged = await client.get("/api/v1/things", headers={"Authorization": "Bearer x.y.z"})
        basic = await client.get("/api/v1/things", headers={"Authorization": "Basic dTpw"})
        for reply, error in (
            (expired, "invalid_token"),
            (forged, "invalid_token"),
            (basic, "invalid_request"),
        ):
            assert reply.status_code == 401
            assert f'error="{error}"' in reply.headers["WWW-Authenticate"]
        assert (await expired.get_json())["code"] == "token_expired"

    async def test_routes_outside_the_api_stay_open(self) -> None:
        client = _app().test_client()
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200

    async def test_without_a_verifier_the_api_is_open(self) -> None:
        app = Quart("open")
        protect_api(app, None, ApiScopes(read="cj:read", write="cj:write"), realm="cj")

        @app.get("/api/v1/things")
        async def things() -> dict[str, str]:
            return {"status": "read"}

        assert (await app.test_client().get("/api/v1/things")).status_code == 200

    async def test_an_unreachable_key_set_is_a_503_to_retry_not_a_401(self) -> None:
        with _jwks_server(_key_set()) as (url, _):
            pass  # stopped: the port refuses connections now
        settings = ServiceSettings(auth_jwks_url=url, auth_audience="huleedu-cj")
        app = Quart("keys-down")
        protect_api(
            app,
            api_token_verifier(settings),
            ApiScopes(read="cj:read", write="cj:write"),
            realm="cj",
        )

        @app.get("/api/v1/things")
        async def things() -> dict[str, str]:
            return {"status": "read"}

        token = _signed(RSA_KEY, "RS256", "rsa-1")
        reply = await app.test_client().get(
            "/api/v1/things", headers={"Authorization": f"Bearer {token}"}
        )
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "5"
        assert (await reply.get_json())["code"] == "service_unavailable"


class TestScopeByPrefix:
    def test_a_route_under_an_operator_prefix_needs_its_own_scope_for_any_method(self) -> None:
        scopes = ApiScopes(
            read="cj:read", write="cj:write", by_prefix={"/api/v1/erasures/": "cj:erase"}
        )
        assert scopes.needed("POST", "/api/v1/erasures/batches/b1") == "cj:erase"
        assert scopes.needed("GET", "/api/v1/erasures/batches/b1") == "cj:erase"

    def test_other_routes_keep_the_read_and_write_scopes(self) -> None:
        scopes = ApiScopes(
            read="cj:read", write="cj:write", by_prefix={"/api/v1/erasures/": "cj:erase"}
        )
        assert scopes.needed("GET", "/api/v1/batches/b1") == "cj:read"
        assert scopes.needed("HEAD", "/api/v1/batches") == "cj:read"
        assert scopes.needed("POST", "/api/v1/batches/b1/cancel") == "cj:write"

    def test_the_longest_matching_prefix_wins(self) -> None:
        scopes = ApiScopes(
            read="r", write="w", by_prefix={"/api/": "broad", "/api/v1/erasures/": "narrow"}
        )
        assert scopes.needed("GET", "/api/v1/erasures/x") == "narrow"
        assert scopes.needed("GET", "/api/v1/other") == "broad"
