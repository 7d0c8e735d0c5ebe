"""The batch API: status, lookup by upstream ref, results and cancel."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from dishka import FromDishka
from quart import Blueprint, request
from quart_dishka import inject

from cj_assessment_service.application.ports import BatchReads, Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import BatchNotCompleted, BatchNotFound
from cj_assessment_service.entrypoints.http_errors import InvalidParameter
from cj_assessment_service.entrypoints.http_views import batch_view
from common_core.limits import MAX_ID_CHARS, storable_text_problem

batches = Blueprint("batches", __name__)


def _batch_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidParameter("batch_id", f"{raw!r} is not a UUID") from None


@batches.get("/api/v1/batches/<batch_id>")
@inject
async def get_batch(batch_id: str, batches: FromDishka[BatchReads]) -> dict[str, Any]:
    batch = await batches.get(_batch_id(batch_id))
    if batch is None:
        raise BatchNotFound(f"no batch {batch_id}")
    return batch_view(batch)


@batches.get("/api/v1/batches")
@inject
async def find_batch(batches: FromDishka[BatchReads]) -> dict[str, Any]:
    entity_ref = request.args.get("entity_ref", "").strip()
    if not entity_ref:
        raise InvalidParameter("entity_ref", "the entity_ref query parameter is required")
    if len(entity_ref) > MAX_ID_CHARS:
        raise InvalidParameter("entity_ref", f"longer than {MAX_ID_CHARS} characters")
    problem = storable_text_problem(entity_ref)
    if problem is not None:
        raise InvalidParameter("entity_ref", problem)
    batch = await batches.newest(entity_ref)
    if batch is None:
        raise BatchNotFound(f"no batch for entity_ref {entity_ref!r}")
    return batch_view(batch)


@batches.get("/api/v1/batches/<batch_id>/results")
@inject
async def get_results(batch_id: str, batches: FromDishka[BatchReads]) -> dict[str, Any]:
    batch = await batches.get(_batch_id(batch_id))
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
@inject
async def cancel_batch(
    batch_id: str,
    transactions: FromDishka[Transactions],
    workflow: FromDishka[CJWorkflow],
) -> dict[str, Any]:
    async with transactions() as uow:
        batch = await workflow.cancel(uow, _batch_id(batch_id))
    return batch_view(batch)
