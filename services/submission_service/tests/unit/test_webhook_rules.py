"""SSRF address rules, signatures and backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from submission_service.domain.webhooks import (
    backoff_seconds,
    host_is_allowlisted,
    refusal_reason,
    signature_header,
    verify_signature,
)


class TestRefusalReason:
    @pytest.mark.parametrize(
        ("address", "reason"),
        [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.1", "private"),
            ("192.168.1.1", "private"),
            ("172.16.5.4", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link_local"),
            ("fe80::1", "link_local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("240.0.0.1", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("100.64.0.1", "not_global"),
        ],
    )
    def test_internal_addresses_are_refused(self, address: str, reason: str) -> None:
        assert refusal_reason(address) == reason

    @pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:85e5"])
    def test_public_addresses_pass(self, address: str) -> None:
        assert refusal_reason(address) is None


class TestSignature:
    def test_header_format(self) -> None:
        header = signature_header("s3cret", 1700000000, b'{"a":1}')
        timestamp, digest = header.split(",")
        assert timestamp == "t=1700000000"
        assert digest.startswith("v1=")
        assert len(digest) == 3 + 64

    @given(st.text(min_size=1), st.integers(min_value=0, max_value=2**40), st.binary())
    def test_a_signature_verifies_only_with_its_secret_and_body(
        self, secret: str, timestamp: int, body: bytes
    ) -> None:
        header = signature_header(secret, timestamp, body)
        assert verify_signature(secret, header, body)
        assert not verify_signature(secret + "x", header, body)
        assert not verify_signature(secret, header, body + b"x")

    def test_malformed_headers_do_not_verify(self) -> None:
        assert not verify_signature("s", "garbage", b"")
        assert not verify_signature("s", "t=abc,v1=00", b"")


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff_seconds(n, base=1.0, maximum=5.0) for n in range(1, 6)] == [1, 2, 4, 5, 5]


def test_allowlist_is_an_exact_case_insensitive_host_match() -> None:
    assert host_is_allowlisted("LocalHost.", ["localhost"])
    assert not host_is_allowlisted("evil-localhost", ["localhost"])
