"""The essay-set upload: `POST /api/v1/essay-sets` with one essay per NDJSON line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta

from dishka import FromDishka
from quart import Blueprint, request
from quart_dishka import inject
from werkzeug.exceptions import RequestEntityTooLarge

from cj_assessment_service import metrics
from cj_assessment_service.application.essay_sets import upload_essay_set
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.errors import InvalidEssaySet
from cj_assessment_service.entrypoints.http_errors import BodyTooLarge, UnsupportedBody

essay_sets = Blueprint("essay_sets", __name__)

NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-lines"})


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
@inject
async def upload(
    transactions: FromDishka[Transactions], settings: FromDishka[Settings]
) -> tuple[dict[str, object], int]:
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
    return receipt.to_json(), 201


def _count_stored(essays: int) -> None:
    metrics.ESSAY_SET_UPLOADS.labels(outcome="stored").inc()
    metrics.ESSAY_SET_ESSAYS.inc(essays)
