"""SSRF address rules, signatures and backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from submission_service.domain.errors import InvalidInputError
from submission_service.domain.webhooks import (
    WebhookUrl,
    backoff_seconds,
    host_is_allowlisted,
    refusal_reason,
    signature_header,
    split_webhook_url,
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
            ("::ffff:169.254.169.254", "metadata"),
            ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
            ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
            ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
            ("64:ff9b::c0a8:101", "private"),  # NAT64 of 192.168.1.1
            ("fd00:ec2::254", "metadata"),
            ("fc00::1", "private"),
            ("ff02::1", "multicast"),
            ("::", "unspecified"),
            ("100.64.0.1", "not_global"),
        ],
    )
    def test_internal_addresses_are_refused(self, address: str, reason: str) -> None:
        assert refusal_reason(address) == reason

    @pytest.mark.parametrize(
        "address", ["93.184.215.14", "2606:4700::6810:85e5", "64:ff9b::5db8:d70e"]
    )
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


class TestWebhookUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("https://example.org/hook", WebhookUrl("https", "example.org", 443, "/hook")),
            ("http://Example.ORG", WebhookUrl("http", "example.org", 80, "/")),
            (
                "https://example.org:8443/a?b=1#frag",
                WebhookUrl("https", "example.org", 8443, "/a?b=1"),
            ),
            ("http://[2606:4700::1]:81/x", WebhookUrl("http", "2606:4700::1", 81, "/x")),
            ("https://bücher.example/", WebhookUrl("https", "xn--bcher-kva.example", 443, "/")),
        ],
    )
    def test_urls_are_taken_apart(self, url: str, expected: WebhookUrl) -> None:
        assert split_webhook_url(url) == expected

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.org/",
            "example.org",
            "http://:80/",
            "http://user:pw@example.org/",
            "http://example.org:0/",
            "http://example.org:99999/",
            "http://exa mple.org/",
            "http://a..b/",
        ],
    )
    def test_other_urls_are_invalid(self, url: str) -> None:
        with pytest.raises(InvalidInputError):
            split_webhook_url(url)

    def test_the_host_header_keeps_the_name_and_a_non_default_port(self) -> None:
        assert WebhookUrl("https", "example.org", 443, "/").host_header == "example.org"
        assert WebhookUrl("http", "example.org", 8080, "/").host_header == "example.org:8080"
        assert WebhookUrl("http", "2606:4700::1", 80, "/").host_header == "[2606:4700::1]"

    def test_the_connected_url_has_the_address_in_place_of_the_name(self) -> None:
        url = WebhookUrl("https", "example.org", 443, "/hook?x=1")

        assert url.at("93.184.215.14") == "https://93.184.215.14:443/hook?x=1"
        assert url.at("2606:4700::1") == "https://[2606:4700::1]:443/hook?x=1"
