"""Reading the caller's identity from request headers: JWTs (the service's HS256 secret or the
AUTH_JWKS_* key set, through common_core's verifier) and anonymous tokens."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from common_core.runtime.http_auth import (
    TokenRejectedError,
    TokenVerifier,
    bearer_token,
    token_scopes,
)
from submission_service.domain.errors import AuthenticationError, ForbiddenError
from submission_service.domain.identity import Identity


class JwtIdentityReader:
    """`Authorization: Bearer <JWT>` (signature, issuer, audience, expiry and subject checked) or
    `X-Anonymous-Token: <uuid>`; the bearer token wins when both are sent, and an Authorization
    header that is sent must prove a user (an empty or invalid one is refused, never ignored)."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def identify(self, authorization: str | None, anonymous_token: str | None) -> Identity:
        """The identity the headers prove; raises AuthenticationError."""
        if authorization is not None:
            return Identity(user_id=await self.user_from_header(authorization))
        if anonymous_token:
            return Identity(anonymous_token=parse_anonymous_token(anonymous_token))
        raise AuthenticationError(
            "send Authorization: Bearer <JWT> or X-Anonymous-Token: <uuid>",
            reason="authentication_required",
        )

    async def user_from_header(self, authorization: str) -> str:
        """The verified `sub` of a Bearer token (SigningKeysUnavailableError, a 503, when the
        JWKS endpoint cannot be read)."""
        subject, _claims = await self._verified(authorization)
        return subject

    async def operator_with_scope(self, authorization: str | None, scope: str) -> str:
        """The verified `sub` of an operator's Bearer token that grants `scope` (in `scope` or
        `scp`): AuthenticationError without a valid token, ForbiddenError without the scope."""
        if authorization is None:
            raise AuthenticationError(
                "send Authorization: Bearer <JWT> with the scope " + scope,
                reason="authentication_required",
            )
        subject, claims = await self._verified(authorization)
        if scope not in token_scopes(claims):
            raise ForbiddenError(
                f"the token lacks the scope {scope}",
                reason="insufficient_scope",
                details={"scope": scope},
            )
        return subject

    async def _verified(self, authorization: str) -> tuple[str, dict[str, Any]]:
        try:
            claims = await self._verifier.verify(bearer_token(authorization))
        except TokenRejectedError as exc:
            if exc.reason == "invalid_request":
                raise AuthenticationError(
                    exc.message, reason="invalid_authorization_header", field="Authorization"
                ) from exc
            raise AuthenticationError(exc.message, reason=exc.reason) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationError("the token has no subject", reason="invalid_token")
        return subject, claims


def parse_anonymous_token(value: str) -> UUID:
    """An anonymous token must be a UUID; anything else is a credential that proves nothing."""
    try:
        return UUID(value.strip())
    except ValueError as exc:
        raise AuthenticationError(
            "X-Anonymous-Token must be a UUID",
            reason="invalid_anonymous_token",
            field="X-Anonymous-Token",
        ) from exc
