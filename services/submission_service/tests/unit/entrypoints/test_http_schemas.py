"""The patterns the OpenAPI document states are ones the service accepts in full.

A request that fits the document must not be refused later by a stricter check: every webhook
URL the pattern admits is one the webhook rules can take apart, every timestamp it admits is
read, every UUID it admits is a UUID.
"""

from __future__ import annotations

import re
from datetime import UTC
from uuid import UUID

import jsonschema_rs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from submission_service.domain.webhooks import split_webhook_url
from submission_service.entrypoints.http_schemas import (
    EMPTY_TIMESTAMP_PATTERN,
    TIMESTAMP_PATTERN,
    UUID_PATTERN,
    WEBHOOK_HOST_LENGTH_PATTERN,
    WEBHOOK_URL_PATTERN,
    CreateResponseIn,
    WebhookIn,
    is_uuid,
)

_RFC3339 = jsonschema_rs.validator_for(
    {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}, validate_formats=True
)


class TestWebhookUrl:
    @given(
        st.from_regex(WEBHOOK_URL_PATTERN, fullmatch=True).filter(
            re.compile(WEBHOOK_HOST_LENGTH_PATTERN).fullmatch
        )
    )
    def test_every_url_the_patterns_admit_is_one_the_webhook_rules_take_apart(
        self, url: str
    ) -> None:
        assert WebhookIn(url=url).url == url
        location = split_webhook_url(url)

        assert location.scheme in ("http", "https")
        assert 1 <= location.port <= 65535

    @pytest.mark.parametrize(
        "url",
        [
            "https://hooks.example.org/huleedu?x=1",
            "HTTP://Example.org:8080",
            "http://[2001:db8::1]:443/hook",
            "http://[::ffff:192.0.2.1]/",
        ],
    )
    def test_ordinary_urls_are_accepted(self, url: str) -> None:
        assert WebhookIn(url=url).url == url

    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.org/",
            "http://user@example.org/",
            "http://example.org:0/",
            "http://example.org:070/",
            "http://[1:2:3:4:5:6:7:8:9]/",
            "http://example.org/\u00e9",
            "http://",
            "http://.8/",
            "http://a..b/",
            f"http://{'a' * 64}.org/",
            f"http://{'.'.join(['a' * 60] * 5)}/",
        ],
    )
    def test_anything_else_is_refused_naming_the_url(self, url: str) -> None:
        with pytest.raises(ValidationError) as caught:
            WebhookIn(url=url)

        assert caught.value.errors()[0]["loc"] == ("url",)


class TestCompletedAt:
    @given(st.from_regex(TIMESTAMP_PATTERN, fullmatch=True).filter(_RFC3339.is_valid))
    def test_every_timestamp_the_document_admits_is_read_as_utc(self, text: str) -> None:
        answer = CreateResponseIn(question_id="q", module_slug="m", completed_at=text)

        assert answer.completed_at is not None
        assert answer.completed_at.tzinfo is UTC

    @given(st.from_regex(EMPTY_TIMESTAMP_PATTERN, fullmatch=True))
    def test_every_empty_marker_the_document_admits_clears_it(self, text: str) -> None:
        answer = CreateResponseIn(question_id="q", module_slug="m", completed_at=text)

        assert answer.completed_at is None

    @pytest.mark.parametrize(
        "text",
        ["2026-11-22T12:00:00", "2026-11-22", "2026-11-22t12:00:00z", "0001-01-01T00:00:00+01:00"],
    )
    def test_timestamps_outside_the_document_are_refused(self, text: str) -> None:
        with pytest.raises(ValidationError) as caught:
            CreateResponseIn(question_id="q", module_slug="m", completed_at=text)

        assert caught.value.errors()[0]["loc"] == ("completed_at",)


class TestUuid:
    @given(st.from_regex(UUID_PATTERN, fullmatch=True))
    def test_every_uuid_the_pattern_admits_is_a_uuid(self, text: str) -> None:
        assert is_uuid(text)
        assert UUID(text) == UUID(text.lower())

    @pytest.mark.parametrize(
        "text", ["12345678123456781234567812345678", "{12345678-1234-5678-1234-567812345678}"]
    )
    def test_other_spellings_python_would_read_are_refused(self, text: str) -> None:
        UUID(text)  # Python reads it, the document's `format: uuid` does not

        assert not is_uuid(text)
        assert re.fullmatch(UUID_PATTERN, text) is None
