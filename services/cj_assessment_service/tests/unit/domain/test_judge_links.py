"""Signed judge links: what a token grants and every way it is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.judge_links import (
    InvalidJudgeLink,
    JudgeLinkClaims,
    LinkProblem,
    sign_judge_link,
    verify_judge_link,
)

SECRET = b"a judge link secret of enough length"
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
CLAIMS = JudgeLinkClaims(uuid.uuid4(), "teacher-1", NOW + timedelta(hours=1))


def _refusal(token: str, *, secret: bytes = SECRET, now: datetime = NOW) -> LinkProblem:
    with pytest.raises(InvalidJudgeLink) as refused:
        verify_judge_link(token, secret, now)
    return refused.value.reason


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TestValidLinks:
    def test_a_signed_link_verifies_to_its_claims(self) -> None:
        assert verify_judge_link(sign_judge_link(CLAIMS, SECRET), SECRET, NOW) == CLAIMS

    def test_the_token_is_url_safe(self) -> None:
        token = sign_judge_link(CLAIMS, SECRET)
        assert set(token) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        )


class TestRefusedLinks:
    def test_expired_at_the_deadline(self) -> None:
        token = sign_judge_link(CLAIMS, SECRET)
        assert _refusal(token, now=CLAIMS.expires_at) == LinkProblem.EXPIRED

    def test_another_secret_is_a_bad_signature(self) -> None:
        token = sign_judge_link(CLAIMS, SECRET)
        assert _refusal(token, secret=b"another secret") == LinkProblem.BAD_SIGNATURE

    @pytest.mark.parametrize(
        "change",
        [
            {"b": str(uuid.uuid4())},  # another batch
            {"j": "teacher-2"},  # another judge
            {"e": int((NOW + timedelta(days=30)).timestamp())},  # a later expiry
        ],
    )
    def test_changing_a_claim_breaks_the_signature(self, change: dict[str, object]) -> None:
        body, signature = sign_judge_link(CLAIMS, SECRET).split(".")
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        forged = _b64(json.dumps({**claims, **change}).encode())
        assert _refusal(f"{forged}.{signature}") == LinkProblem.BAD_SIGNATURE

    def test_a_changed_signature_is_refused(self) -> None:
        body, signature = sign_judge_link(CLAIMS, SECRET).split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        assert _refusal(f"{body}.{flipped}") == LinkProblem.BAD_SIGNATURE

    def test_a_signature_spelt_otherwise_with_the_same_bytes_is_refused(self) -> None:
        body, signature = sign_judge_link(CLAIMS, SECRET).split(".")
        # The last of 43 base64url characters carries 4 bits of the digest and 2 unused bits.
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        group = alphabet.index(signature[-1]) // 4 * 4  # the 4 that differ in the unused bits
        same_digest = [
            f"{signature[:-1]}{c}" for c in alphabet[group : group + 4] if c != signature[-1]
        ]
        decoded = {base64.urlsafe_b64decode(s + "=") for s in [signature, *same_digest]}

        assert len(same_digest) == 3
        assert len(decoded) == 1
        for spelling in same_digest:
            assert _refusal(f"{body}.{spelling}") == LinkProblem.BAD_SIGNATURE

    @pytest.mark.parametrize(
        "token", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "%%%.***", "abc.a"]
    )
    def test_garbage_is_malformed_or_unsigned(self, token: str) -> None:
        assert _refusal(token) in {LinkProblem.MALFORMED, LinkProblem.BAD_SIGNATURE}

    def test_a_signed_body_that_is_not_our_claims_is_malformed(self) -> None:
        body = _b64(b'{"v": 2}')
        signature = _b64(hmac.new(SECRET, body.encode(), hashlib.sha256).digest())
        assert _refusal(f"{body}.{signature}") == LinkProblem.MALFORMED

    @given(st.text(max_size=200))
    def test_no_text_verifies_without_the_secret(self, token: str) -> None:
        with pytest.raises(InvalidJudgeLink):
            verify_judge_link(token, SECRET, NOW)
