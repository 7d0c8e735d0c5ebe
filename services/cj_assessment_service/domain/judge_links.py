"""Signed judge links: the credential of a human judge's page.

A token is `base64url(JSON claims) + "." + base64url(HMAC-SHA256(secret, first part))`, the
claims `{"b": batch id, "j": judge id, "e": expiry (unix seconds), "v": 1}`. It reaches exactly
one judge's pairs of one batch until the batch's human deadline; nothing else is stored, so a
link cannot be revoked before it expires (the deadline releases the judge's pairs anyway).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

TOKEN_VERSION = 1


class LinkProblem(StrEnum):
    """Why a token is refused."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"
    EXPIRED = "expired"


class InvalidJudgeLink(Exception):  # noqa: N818 - named for the condition it reports
    """A judge link that cannot be used; `reason` says why."""

    def __init__(self, reason: LinkProblem) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class JudgeLinkClaims:
    """What a valid token grants: one judge's pairs of one batch until `expires_at`."""

    batch_id: UUID
    judge_id: str
    expires_at: datetime


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidJudgeLink(LinkProblem.MALFORMED) from None


def _signature(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()


def sign_judge_link(claims: JudgeLinkClaims, secret: bytes) -> str:
    """The token of `claims`, signed with `secret`."""
    body = _encode(
        json.dumps(
            {
                "b": str(claims.batch_id),
                "j": claims.judge_id,
                "e": int(claims.expires_at.timestamp()),
                "v": TOKEN_VERSION,
            },
            separators=(",", ":"),
        ).encode("utf-8")
    )
    return f"{body}.{_encode(_signature(secret, body))}"


def verify_judge_link(token: str, secret: bytes, now: datetime) -> JudgeLinkClaims:
    """The claims of a token signed with `secret` and not expired at `now`, or
    `InvalidJudgeLink` saying why (malformed, bad signature, expired)."""
    body, dot, signature = token.partition(".")
    if not dot or not body or not signature or not body.isascii() or not signature.isascii():
        raise InvalidJudgeLink(LinkProblem.MALFORMED)
    _decode(signature)  # not base64url at all: malformed
    # The text is compared, not the decoded bytes: the last character of 43 carries 2 unused
    # bits, so 4 spellings of one signature decode alike, and a changed link would verify.
    if not hmac.compare_digest(signature, _encode(_signature(secret, body))):
        raise InvalidJudgeLink(LinkProblem.BAD_SIGNATURE)
    claims = _claims(_decode(body))
    if claims.expires_at <= now:
        raise InvalidJudgeLink(LinkProblem.EXPIRED)
    return claims


def _claims(raw: bytes) -> JudgeLinkClaims:
    """The claims of a signed body (ours, so a bad one is a version or encoding mismatch)."""
    try:
        values = json.loads(raw)
        if not isinstance(values, dict) or values.get("v") != TOKEN_VERSION:
            raise ValueError("unknown token version")
        judge_id, expires = values["j"], values["e"]
        if not isinstance(judge_id, str) or type(expires) is not int:
            raise ValueError("claims of the wrong type")
        return JudgeLinkClaims(
            batch_id=UUID(values["b"]),
            judge_id=judge_id,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        raise InvalidJudgeLink(LinkProblem.MALFORMED) from None
