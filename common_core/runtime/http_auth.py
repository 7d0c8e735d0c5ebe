"""Bearer tokens on the services' HTTP APIs: JWTs verified against a JWKS (a URL or a file;
RS256/ES256) or a shared HS256 secret, `iss`/`aud`/`exp` checked, and scopes per route.

One verifier (`TokenVerifier`) serves both the CJ and LLM provider APIs (`protect_api`, a
`before_request` hook on `/api/` answering 401/403 with RFC 6750 challenges) and the submission
service's identity reader. PyJWT does the cryptography; nothing here logs a token.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import structlog
from pydantic import BaseModel, Field
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from common_core.runtime.http import error_body, errors, request_route
from common_core.runtime.settings import ServiceSettings

log = structlog.get_logger(__name__)

SHARED_SECRET_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name, not a secret
KEY_SET_ALGORITHMS = ("RS256", "ES256")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
AUTH_RETRY_AFTER_SECONDS = 5


class TokenRejectedError(Exception):
    """A credential that proves nothing: `reason` is `invalid_request` (not a Bearer header),
    `invalid_token` or `token_expired`; the message never repeats the token."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class SigningKeysUnavailableError(Exception):
    """The JWKS endpoint could not be read: an outage here, not a bad token."""


@dataclass(frozen=True)
class ClaimRules:
    """What a token's claims must say."""

    issuer: str
    audience: str
    leeway_seconds: int
    required: tuple[str, ...] = ("exp", "iss", "aud")


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header; raises TokenRejectedError."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejectedError("Authorization must be 'Bearer <JWT>'", reason="invalid_request")
    return token.strip()


def token_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The scopes a token grants: `scope` (space-separated, RFC 8693) or `scp` (a list or a
    space-separated string, as some identity providers write it)."""
    scopes: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(item for item in value if isinstance(item, str))
    return frozenset(scopes)


class TokenVerifier:
    """Verifies JWTs: HS256 against a shared secret, RS256/ES256 against a JWKS (a file read once
    or a URL fetched through PyJWT's cached client), the claims against `rules`."""

    def __init__(
        self,
        rules: ClaimRules,
        *,
        secret: str | None = None,
        key_set: jwt.PyJWKSet | None = None,
        key_client: jwt.PyJWKClient | None = None,
    ) -> None:
        if secret is None and key_set is None and key_client is None:
            raise ValueError("a token verifier needs a secret, a JWKS file or a JWKS URL")
        self._rules = rules
        self._secret = secret
        self._key_set = key_set
        self._key_client = key_client

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The signature algorithms this verifier accepts."""
        algorithms: tuple[str, ...] = (SHARED_SECRET_ALGORITHM,) if self._secret else ()
        if self._key_set is not None or self._key_client is not None:
            algorithms += KEY_SET_ALGORITHMS
        return algorithms

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises TokenRejectedError or SigningKeysUnavailableError."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRejectedError("the token is not a JWT", reason="invalid_token") from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise TokenRejectedError(
                "the token is signed with an algorithm this service does not accept",
                reason="invalid_token",
            )
        key = await self._key(algorithm, header.get("kid"), token)
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=self._rules.issuer,
                audience=self._rules.audience,
                leeway=self._rules.leeway_seconds,
                options={"require": list(self._rules.required)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenRejectedError("the token has expired", reason="token_expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRejectedError(
                f"the token is not valid: {type(exc).__name__}", reason="invalid_token"
            ) from exc

    async def _key(self, algorithm: str, kid: object, token: str) -> Any:
        if algorithm == SHARED_SECRET_ALGORITHM:
            return self._secret
        if self._key_set is not None:
            return _key_from_set(self._key_set, algorithm, kid)
        assert self._key_client is not None  # algorithms() admits no other case
        try:
            # PyJWKClient fetches with urllib (blocking); its cache answers most calls at once.
            signing_key = await asyncio.to_thread(self._key_client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise SigningKeysUnavailableError("the JWKS endpoint did not answer") from exc
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise TokenRejectedError(
                "no key of the JWKS matches the token", reason="invalid_token"
            ) from exc
        return _checked_key(signing_key, algorithm)


def _key_from_set(key_set: jwt.PyJWKSet, algorithm: str, kid: object) -> Any:
    keys = list(key_set.keys)
    if isinstance(kid, str):
        keys = [key for key in keys if key.key_id == kid]
    elif len(keys) > 1:
        raise TokenRejectedError("the token names no key (kid)", reason="invalid_token")
    if not keys:
        raise TokenRejectedError("no key of the JWKS matches the token", reason="invalid_token")
    return _checked_key(keys[0], algorithm)


def _checked_key(key: jwt.PyJWK, algorithm: str) -> Any:
    # A key verifies only its own algorithm (its `alg`, or the one its type and curve imply): no
    # algorithm confusion.
    if key.algorithm_name != algorithm:
        raise TokenRejectedError("the token's algorithm is not its key's", reason="invalid_token")
    return key.key


def key_sets(settings: ServiceSettings) -> tuple[jwt.PyJWKSet | None, jwt.PyJWKClient | None]:
    """The AUTH_JWKS_FILE key set (read now) and the AUTH_JWKS_URL client (fetches lazily, caches
    AUTH_JWKS_CACHE_SECONDS)."""
    key_set = None
    if settings.auth_jwks_file is not None:
        try:
            key_set = jwt.PyJWKSet.from_json(settings.auth_jwks_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, jwt.PyJWKError) as exc:
            raise ValueError(
                f"AUTH_JWKS_FILE cannot be used as a JWKS: {type(exc).__name__}"
            ) from exc
    key_client = None
    if settings.auth_jwks_url is not None:
        key_client = jwt.PyJWKClient(
            settings.auth_jwks_url,
            cache_keys=True,
            lifespan=settings.auth_jwks_cache_seconds,
            timeout=JWKS_FETCH_TIMEOUT_SECONDS,
        )
    return key_set, key_client


def api_token_verifier(settings: ServiceSettings) -> TokenVerifier | None:
    """The verifier of a service's `/api` routes, or None when the settings turn auth off
    (outside production only: settings validation refuses it there)."""
    if not settings.api_auth_enabled:
        log.warning("api_authentication_disabled", hint="set AUTH_JWT_SECRET or AUTH_JWKS_URL")
        return None
    key_set, key_client = key_sets(settings)
    rules = ClaimRules(
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        leeway_seconds=settings.auth_leeway_seconds,
    )
    return TokenVerifier(
        rules, secret=settings.auth_secret(), key_set=key_set, key_client=key_client
    )


class BearerChallengeHeaders(BaseModel):
    """The challenge a 401 or 403 carries (RFC 6750)."""

    www_authenticate: str = Field(
        description='`Bearer realm="<service>"`, with `error` (`invalid_request`, '
        "`invalid_token`, `insufficient_scope`) when a token was refused or lacks a scope."
    )


authenticated = errors(
    401, 403, 503, headers={401: BearerChallengeHeaders, 403: BearerChallengeHeaders}
)
"""Document a protected route's 401 and 403 (JSON error body, WWW-Authenticate challenge) and
its 503 (Retry-After) while the JWKS endpoint cannot be read."""


def _challenge(realm: str, error: str | None = None, **params: str) -> str:
    parts = [f'realm="{realm}"']
    if error is not None:
        parts.append(f'error="{error}"')
    parts.extend(f'{name}="{value}"' for name, value in params.items())
    return "Bearer " + ", ".join(parts)


def _refusal(status: int, code: str, message: str, headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(error_body(code, message)),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def register_signing_key_errors(app: Quart) -> None:
    """Answer 503 (JSON, Retry-After) while the JWKS endpoint cannot be read: an outage, not a
    bad token."""

    @app.errorhandler(SigningKeysUnavailableError)
    async def keys_unavailable(_exc: SigningKeysUnavailableError) -> Response:
        log.warning("jwks_unavailable", route=request_route())
        return _refusal(
            503,
            "service_unavailable",
            "the signing keys cannot be read; retry later",
            {"Retry-After": str(AUTH_RETRY_AFTER_SECONDS)},
        )


@dataclass(frozen=True)
class ApiScopes:
    """The scope a read (GET, HEAD, OPTIONS) and a write (anything else) needs; `by_prefix`
    gives routes under a path prefix their own scope whatever the method (the longest matching
    prefix wins), e.g. the operators' erasure routes."""

    read: str
    write: str
    by_prefix: Mapping[str, str] = field(default_factory=dict)

    def needed(self, method: str, path: str) -> str:
        """The scope a request with this method and path needs."""
        matches = [prefix for prefix in self.by_prefix if path.startswith(prefix)]
        if matches:
            return self.by_prefix[max(matches, key=len)]
        return self.read if method in READ_METHODS else self.write


def protect_api(
    app: Quart,
    verifier: TokenVerifier | None,
    scopes: ApiScopes,
    *,
    realm: str,
    prefix: str = "/api/",
) -> None:
    """Require a valid bearer token with the method's scope on every route under `prefix`:
    401 (missing or bad token) or 403 (missing scope), with a `WWW-Authenticate` challenge and
    the services' JSON error body. `verifier` None leaves the routes open (development)."""
    if verifier is None:
        return
    register_signing_key_errors(app)

    @app.before_request
    async def authenticate() -> Response | None:
        if not request.path.startswith(prefix):
            return None
        refusal = await _refusal_of(verifier, scopes, realm)
        if refusal is not None:
            await _discard_body(REFUSED_BODY_READ_BYTES)
        return refusal


REFUSED_BODY_READ_BYTES = 1024 * 1024
"""What a refused request's body is read (and dropped) up to, so a client still sending a small
upload hears the 401/403 instead of a reset connection; a larger one is cut off unread."""


async def _discard_body(limit: int) -> None:
    read = 0
    try:
        async for chunk in request.body:
            read += len(chunk)
            if read > limit:
                return
    except HTTPException:
        return  # over MAX_CONTENT_LENGTH: the connection closes, as for any refused upload


async def _refusal_of(verifier: TokenVerifier, scopes: ApiScopes, realm: str) -> Response | None:
    authorization = request.headers.get("Authorization")
    if authorization is None:
        return _refusal(
            401,
            "authentication_required",
            "send Authorization: Bearer <JWT>",
            {"WWW-Authenticate": _challenge(realm)},
        )
    try:
        claims = await verifier.verify(bearer_token(authorization))
    except TokenRejectedError as exc:
        error = "invalid_request" if exc.reason == "invalid_request" else "invalid_token"
        challenge = _challenge(realm, error, error_description=exc.message)
        return _refusal(401, exc.reason, exc.message, {"WWW-Authenticate": challenge})
    subject = claims.get("sub")
    g.api_token_subject = subject if isinstance(subject, str) else None
    needed = scopes.needed(request.method, request.path)
    if needed not in token_scopes(claims):
        return _refusal(
            403,
            "insufficient_scope",
            f"the token lacks the scope {needed}",
            {"WWW-Authenticate": _challenge(realm, "insufficient_scope", scope=needed)},
        )
    return None


def token_subject() -> str | None:
    """The `sub` claim of the request's verified bearer token; None when the API is open (no
    verifier) or the token has none. Call it inside a request."""
    subject = g.get("api_token_subject")
    return subject if isinstance(subject, str) else None


def sign_token(
    secret: str,
    *,
    subject: str,
    scopes: Sequence[str],
    issuer: str,
    audience: str,
    lifetime_seconds: int = 3600,
) -> str:
    """An HS256 token for a shared-secret deployment (the local stack, tests and an operator
    without an identity provider): `sub`, `scope`, `iss`, `aud`, `iat` and `exp`."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime_seconds,
    }
    return jwt.encode(claims, secret, algorithm=SHARED_SECRET_ALGORITHM)
