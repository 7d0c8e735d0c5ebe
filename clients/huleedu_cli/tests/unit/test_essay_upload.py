"""The CLI sends small requests inline and large ones by essay-set reference (claim check)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from common_core.events import CJAssessmentRequestV1, EssayToProcess, EventEnvelope
from common_core.events.envelope import encode_envelope
from huleedu_cli.cj_batch import build_cj_request, request_envelope
from huleedu_cli.errors import EssayUploadError
from huleedu_cli.essay_upload import INLINE_REQUEST_LIMIT_BYTES, fits_inline, sendable_request

CJ_URL = "http://cj.test"
SET_ID = uuid.uuid4()
DIGEST = "ab" * 32


class FakeCJUploads:
    """Plays `POST /api/v1/essay-sets`: records the uploaded lines, answers with `status`."""

    def __init__(self, status: int = 201, answer: dict[str, object] | None = None) -> None:
        self.uploads: list[list[dict[str, str]]] = []
        self._status = status
        self._answer = answer or {
            "essay_set_id": str(SET_ID),
            "essay_count": 0,
            "content_sha256": DIGEST,
            "expires_at": "2026-12-02T00:00:00+00:00",
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/essay-sets"
        assert request.headers["content-type"] == "application/x-ndjson"
        lines = request.read().decode("utf-8").splitlines()
        self.uploads.append([json.loads(line) for line in lines])
        return httpx.Response(self._status, json=self._answer)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


def envelope_of(n: int, words: int) -> EventEnvelope[CJAssessmentRequestV1]:
    text = " ".join(f"word{i % 97}" for i in range(words))
    essays = [EssayToProcess(essay_id=f"e{i:04d}", text_content=text) for i in range(n)]
    return request_envelope(build_cj_request(essays, entity_ref="bos-big"))


class TestChoosingThePath:
    async def test_a_small_batch_is_published_inline_unchanged_without_an_upload(self) -> None:
        uploads = FakeCJUploads()
        envelope = envelope_of(30, 600)

        sent, reference = await sendable_request(
            envelope, cj_url=CJ_URL, transport=uploads.transport
        )

        assert reference is None
        assert sent == envelope
        assert uploads.uploads == []

    async def test_a_batch_over_the_limit_is_uploaded_and_sent_by_reference(self) -> None:
        uploads = FakeCJUploads()
        envelope = envelope_of(400, 600)  # ~1.7 MB inline
        assert not fits_inline(envelope)

        sent, reference = await sendable_request(
            envelope, cj_url=CJ_URL, transport=uploads.transport
        )

        assert reference is not None
        assert reference.essay_set_id == SET_ID
        assert reference.content_sha256 == DIGEST
        assert sent.event_id == envelope.event_id
        assert sent.correlation_id == envelope.correlation_id
        assert sent.data.essays_to_process == []
        assert sent.data.essay_set == reference
        assert sent.data.entity_ref == envelope.data.entity_ref
        assert len(encode_envelope(sent)) < 2_000
        [lines] = uploads.uploads
        assert [(line["essay_id"], line["text_content"]) for line in lines] == [
            (e.essay_id, e.text_content) for e in envelope.data.essays_to_process
        ]

    async def test_the_limit_is_a_margin_below_the_broker_default(self) -> None:
        uploads = FakeCJUploads()
        envelope = envelope_of(30, 600)
        size = len(encode_envelope(envelope))

        _, at_limit = await sendable_request(
            envelope, cj_url=CJ_URL, limit_bytes=size, transport=uploads.transport
        )
        _, over = await sendable_request(
            envelope, cj_url=CJ_URL, limit_bytes=size - 1, transport=uploads.transport
        )

        assert at_limit is None
        assert over is not None
        assert INLINE_REQUEST_LIMIT_BYTES < 1_048_588

    async def test_a_refused_upload_is_one_clear_error_naming_the_field(self) -> None:
        uploads = FakeCJUploads(
            422,
            {"code": "validation", "message": "essays[3].text_content: is empty",
             "field": "essays[3].text_content"},
        )  # fmt: skip

        with pytest.raises(EssayUploadError, match=r"422\), field essays\[3\]\.text_content"):
            await sendable_request(
                envelope_of(400, 600), cj_url=CJ_URL, transport=uploads.transport
            )
