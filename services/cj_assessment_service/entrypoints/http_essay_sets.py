"""The essay-set upload: `POST /api/v1/essay-sets` with one essay per NDJSON line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta

from dishka import FromDishka
from quart import Blueprint, request
from quart_dishka import inject
from quart_schema import tag_blueprint, validate_response
from werkzeug.exceptions import RequestEntityTooLarge

from cj_assessment_service import metrics
from cj_assessment_service.application.essay_sets import upload_essay_set
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.errors import InvalidEssaySet
from cj_assessment_service.entrypoints.http_errors import BodyTooLarge, UnsupportedBody
from cj_assessment_service.entrypoints.http_schemas import EssaySetOut, raw_request_body
from common_core.runtime.http import errors
from common_core.runtime.http_auth import authenticated

essay_sets = Blueprint("essay_sets", __name__)
tag_blueprint(essay_sets, ["essay sets"])

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})

# The body is read line by line as it streams in, never as one JSON document, so it is documented
# here rather than validated by quart-schema.
_UPLOAD_BODY = {
    "required": True,
    "description": "One essay a line: a JSON object `{essay_id, text_content}` "
    "(`EssayToProcess`, its limits included), UTF-8, lines separated by `\\n`. Every essay "
    "is checked as it arrives: a bad line is answered 422 naming it (`essays[i].<field>`). "
    "The set expires after `ESSAY_SET_RETENTION_SECONDS`.",
    "content": {
        media_type: {
            "schema": {"type": "string"},
            "example": '{"essay_id": "e1", "text_content": "First essay."}\n'
            '{"essay_id": "e2", "text_content": "Second essay."}\n',
        }
        for media_type in sorted(NDJSON_TYPES)
    },
}


async def _lines(body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The body's lines as they arrive (a chunk may end mid-line)."""
    rest = b""
    async for chunk in body:
        *complete, rest = (rest + chunk).split(b"\n")
        for line in complete:
            yield line
    if rest:
        yield rest


@essay_sets.post("/api/v1/essay-sets")
@validate_response(EssaySetOut, 201)
@errors(413, 415, 422, 503)
@authenticated
@raw_request_body(_UPLOAD_BODY)
@inject
async def upload(
    transactions: FromDishka[Transactions], settings: FromDishka[Settings]
) -> tuple[EssaySetOut, int]:
    """Upload an essay set (NDJSON) for a request to name instead of inlining its essays.

    Scope: `cj:write`."""
    media_type = (request.mimetype or "").lower()
    if media_type not in NDJSON_TYPES:
        raise UnsupportedBody(
            "Content-Type",
            f"expected application/x-ndjson (one essay object a line), got {media_type or 'none'}",
        )
    try:
        async with transactions() as uow:
            receipt = await upload_essay_set(
                uow.essay_sets,
                _lines(request.body),
                retention=timedelta(seconds=settings.essay_set_retention_seconds),
            )
            uow.after_commit(lambda: _count_stored(receipt.essay_count))
    except RequestEntityTooLarge:
        metrics.ESSAY_SET_UPLOADS.labels(outcome="too_large").inc()
        raise BodyTooLarge(
            f"the upload is larger than ESSAY_SET_MAX_BYTES ({settings.essay_set_max_bytes} bytes)"
        ) from None
    except InvalidEssaySet:
        metrics.ESSAY_SET_UPLOADS.labels(outcome="invalid").inc()
        raise
    return EssaySetOut.model_validate(receipt, from_attributes=True), 201


def _count_stored(essays: int) -> None:
    metrics.ESSAY_SET_UPLOADS.labels(outcome="stored").inc()
    metrics.ESSAY_SET_ESSAYS.inc(essays)
