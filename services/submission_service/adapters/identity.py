"""Reading the caller's identity from request headers: HS256 JWTs and anonymous tokens."""

from __future__ import annotations

from uuid import UUID

import jwt

from submission_service.domain.errors import AuthenticationError
from submission_service.domain.identity import Identity


class JwtIdentityReader:
    """`Authorization: Bearer <JWT>` (signature, issuer, audience, expiry checked) or
    `X-Anonymous-Token: <uuid>`; the bearer token wins when both are sent, and an Authorization
    header that is sent must prove a user (an empty one is malformed, never ignored)."""

    def __init__(self, *, secret: str, issuer: str, audience: str, leeway_seconds: int) -> None:
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds

    def identify(self, authorization: str | None, anonymous_token: str | None) -> Identity:
        """The identity the headers prove; raises AuthenticationError."""
        if authorization is not None:
            return Identity(user_id=self.user_from_header(authorization))
        if anonymous_token:
            return Identity(anonymous_token=parse_anonymous_token(anonymous_token))
        raise AuthenticationError(
            "send Authorization: Bearer <JWT> or X-Anonymous-Token: <uuid>",
            reason="authentication_required",
        )

    def user_from_header(self, authorization: str) -> str:
        """The verified `sub` of a Bearer token."""
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(
                "Authorization must be 'Bearer <JWT>'",
                reason="invalid_authorization_header",
                field="Authorization",
            )
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the token has expired", reason="token_expired") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError(
                f"the token is not valid: {type(exc).__name__}", reason="invalid_token"
            ) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise AuthenticationError("the token has no subject", reason="invalid_token")
        return subject


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
