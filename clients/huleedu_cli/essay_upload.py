"""Large batches by claim check: the essays go to the CJ service over HTTP, the request event
names the stored set.

One Kafka message is limited (the broker's default is 1 MB), so a request whose inline form would
not fit with a margin is sent as an `essay_set` reference instead: the essays are streamed to
`POST /api/v1/essay-sets` as NDJSON (one `{"essay_id", "text_content"}` object a line) and the
answer's id and digest go into the request. Small batches stay inline, exactly as before.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx

from common_core.events import (
    CJAssessmentRequestV1,
    EssaySetReference,
    EssayToProcess,
    EventEnvelope,
)
from common_core.events.envelope import encode_envelope
from huleedu_cli.api_token import bearer_headers
from huleedu_cli.errors import EssayUploadError

# The broker's default limit is 1,048,588 bytes per record batch; a request is sent inline only
# well below it (headers, record overhead and a safety margin).
INLINE_REQUEST_LIMIT_BYTES = 900_000
# Essays per written chunk of the streamed upload body.
_LINES_PER_CHUNK = 100


def fits_inline(
    envelope: EventEnvelope[CJAssessmentRequestV1], limit_bytes: int = INLINE_REQUEST_LIMIT_BYTES
) -> bool:
    """Whether the request, as one encoded message, stays within `limit_bytes`."""
    return len(encode_envelope(envelope)) <= limit_bytes


async def _ndjson(essays: Sequence[EssayToProcess]) -> AsyncIterator[bytes]:
    for start in range(0, len(essays), _LINES_PER_CHUNK):
        yield b"".join(
            json.dumps(
                {"essay_id": e.essay_id, "text_content": e.text_content}, ensure_ascii=False
            ).encode("utf-8")
            + b"\n"
            for e in essays[start : start + _LINES_PER_CHUNK]
        )


async def upload_essay_set(
    cj_url: str,
    essays: Sequence[EssayToProcess],
    *,
    timeout: float = 120.0,
    transport: httpx.AsyncBaseTransport | None = None,
    api_token: str | None = None,
) -> EssaySetReference:
    """Stream the essays to the CJ service; the reference a request can carry instead."""
    base_url = cj_url.rstrip("/")
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport) as http:
        try:
            response = await http.post(
                "/api/v1/essay-sets",
                content=_ndjson(essays),
                headers={"Content-Type": "application/x-ndjson", **bearer_headers(api_token)},
            )
        except httpx.HTTPError as exc:
            raise EssayUploadError(
                f"cannot upload the essays to the CJ service at {base_url}: {type(exc).__name__}"
            ) from exc
    try:
        document = response.json()
    except ValueError:
        document = {}
    if response.status_code != httpx.codes.CREATED or not isinstance(document, dict):
        field = document.get("field") if isinstance(document, dict) else None
        message = document.get("message") if isinstance(document, dict) else None
        raise EssayUploadError(
            f"the CJ service refused the essay upload ({response.status_code})"
            + (f", field {field}" if field else "")
            + f": {message or response.text[:200]}"
        )
    try:
        return EssaySetReference(
            essay_set_id=uuid.UUID(str(document["essay_set_id"])),
            content_sha256=document["content_sha256"],
        )
    except (KeyError, ValueError) as exc:
        raise EssayUploadError(f"unexpected essay-set answer from {base_url}") from exc


def by_reference(
    envelope: EventEnvelope[CJAssessmentRequestV1], reference: EssaySetReference
) -> EventEnvelope[CJAssessmentRequestV1]:
    """The same request (same ids) with its essays replaced by the set reference."""
    data = envelope.data.model_copy(update={"essays_to_process": [], "essay_set": reference})
    return envelope.model_copy(update={"data": data})


async def sendable_request(
    envelope: EventEnvelope[CJAssessmentRequestV1],
    *,
    cj_url: str,
    limit_bytes: int = INLINE_REQUEST_LIMIT_BYTES,
    transport: httpx.AsyncBaseTransport | None = None,
    api_token: str | None = None,
) -> tuple[EventEnvelope[CJAssessmentRequestV1], EssaySetReference | None]:
    """The envelope to publish: unchanged when it fits inline, else by reference after its
    essays were uploaded (with that reference)."""
    if fits_inline(envelope, limit_bytes):
        return envelope, None
    reference = await upload_essay_set(
        cj_url, envelope.data.essays_to_process, transport=transport, api_token=api_token
    )
    return by_reference(envelope, reference), reference
