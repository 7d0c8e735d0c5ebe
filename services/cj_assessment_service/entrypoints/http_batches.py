"""The batch API: status, lookup by upstream ref, results and cancel."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from dishka import FromDishka
from quart import Blueprint, request
from quart_dishka import inject
from quart_schema import document_querystring, tag_blueprint, validate_response

from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import BatchNotCompleted, BatchNotFound
from cj_assessment_service.entrypoints.http_errors import InvalidParameter
from cj_assessment_service.entrypoints.http_schemas import (
    BatchLookupQuery,
    BatchOut,
    BatchResultsOut,
)
from common_core.limits import MAX_ID_CHARS, storable_text_problem
from common_core.runtime.http import errors
from common_core.runtime.http_auth import authenticated

batches = Blueprint("batches", __name__)
tag_blueprint(batches, ["batches"])


def parse_batch_id(raw: str) -> UUID:
    """A batch id of a path, or `InvalidParameter` (400) naming it."""
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidParameter("batch_id", f"{raw!r} is not a UUID") from None


@batches.get("/api/v1/batches/<batch_id>")
@validate_response(BatchOut)
@errors(400, 404, 503)
@authenticated
@inject
async def get_batch(batch_id: str, transactions: FromDishka[Transactions]) -> BatchOut:
    """A batch's state and progress, by its CJ batch id.

    Scope: `cj:read`."""
    async with transactions() as uow:
        batch = await uow.batches.get(parse_batch_id(batch_id))
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id}")
    return BatchOut.of(batch)


# Documented, not validated by quart-schema: the route answers a bad `entity_ref` itself, as an
# `invalid_parameter` error naming the field.
@batches.get("/api/v1/batches")
@validate_response(BatchOut)
@errors(400, 404, 503)
@authenticated
@document_querystring(BatchLookupQuery)
@inject
async def find_batch(transactions: FromDishka[Transactions]) -> BatchOut:
    """The newest batch of an upstream reference (`entity_ref`).

    Scope: `cj:read`."""
    entity_ref = request.args.get("entity_ref", "").strip()
    if not entity_ref:
        raise InvalidParameter("entity_ref", "the entity_ref query parameter is required")
    if len(entity_ref) > MAX_ID_CHARS:
        raise InvalidParameter("entity_ref", f"longer than {MAX_ID_CHARS} characters")
    problem = storable_text_problem(entity_ref)
    if problem is not None:
        raise InvalidParameter("entity_ref", problem)
    async with transactions() as uow:
        batch = await uow.batches.newest(entity_ref)
    if batch is None:
        raise BatchNotFound(f"no batch for entity_ref {entity_ref!r}")
    return BatchOut.of(batch)


@batches.get("/api/v1/batches/<batch_id>/results")
@validate_response(BatchResultsOut)
@errors(400, 404, 409, 503)
@authenticated
@inject
async def get_results(batch_id: str, transactions: FromDishka[Transactions]) -> dict[str, Any]:
    """A completed batch's ranking, statistics and grade projections (409 until completed).

    Scope: `cj:read`."""
    async with transactions() as uow:
        batch = await uow.batches.get(parse_batch_id(batch_id))
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id}")
    if batch.state != BatchState.COMPLETED or batch.result is None:
        raise BatchNotCompleted(f"batch {batch_id} is {batch.state.value}, not COMPLETED")
    return {
        "batch_id": str(batch.id),
        "entity_ref": batch.entity_ref,
        "completion_reason": batch.completion_reason,
        **batch.result,
    }


@batches.post("/api/v1/batches/<batch_id>/cancel")
@validate_response(BatchOut)
@errors(400, 404, 409, 503)
@authenticated
@inject
async def cancel_batch(
    batch_id: str,
    transactions: FromDishka[Transactions],
    workflow: FromDishka[CJWorkflow],
) -> BatchOut:
    """Cancel a running batch: it publishes its failed event (409 once finished).

    Scope: `cj:write`."""
    async with transactions() as uow:
        batch = await workflow.cancel(uow, parse_batch_id(batch_id))
    return BatchOut.of(batch)
