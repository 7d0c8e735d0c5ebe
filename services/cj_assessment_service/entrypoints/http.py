"""The Quart app: operational routes and the batch status, results and cancel API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from dishka import AsyncContainer, FromDishka
from quart import Quart, Response, jsonify, request
from quart_dishka import QuartDishka, inject

from cj_assessment_service.application.ports import (
    BatchRecord,
    BatchRepository,
    BatchTransactions,
)
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import (
    BatchAlreadyFinished,
    BatchNotCompleted,
    BatchNotFound,
    CJError,
)
from common_core.limits import MAX_ID_CHARS, storable_text_problem
from common_core.runtime.http import (
    ReadinessCheck,
    error_body,
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)


class InvalidParameter(CJError):  # noqa: N818 - named for the condition it reports
    """A path or query parameter that cannot be parsed."""

    http_code = "invalid_parameter"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


_STATUS: dict[type[CJError], int] = {
    InvalidParameter: 400,
    BatchNotFound: 404,
    BatchNotCompleted: 409,
    BatchAlreadyFinished: 409,
}


def batch_view(batch: BatchRecord) -> dict[str, Any]:
    """The JSON shape of a batch's state and progress."""
    answered = batch.completed + batch.failed
    view: dict[str, Any] = {
        "batch_id": str(batch.id),
        "entity_ref": batch.entity_ref,
        "state": batch.state.value,
        "correlation_id": str(batch.correlation_id),
        "created_at": batch.created_at.isoformat(),
        "updated_at": batch.updated_at.isoformat(),
        "progress": {
            "essays": batch.essay_count,
            "budget": batch.budget,
            "planned": batch.planned,
            "completed": batch.completed,
            "failed": batch.failed,
            "pending": max(0, batch.planned - answered),
            "percent_complete": round(100.0 * answered / batch.budget, 2) if batch.budget else 0.0,
        },
        "partial_scoring_triggered": batch.partial_scoring_triggered,
    }
    if batch.completion_reason is not None:
        view["completion_reason"] = batch.completion_reason
    if batch.error_detail is not None:
        view["error"] = {
            "code": batch.error_detail.get("code"),
            "message": batch.error_detail.get("message"),
        }
    return view


def _batch_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidParameter("batch_id", f"{raw!r} is not a UUID") from None


def create_app(container: AsyncContainer, readiness: Mapping[str, ReadinessCheck]) -> Quart:
    """Build the Quart app wired to the container."""
    app = Quart("cj_assessment_service")
    register_operational_routes(app, readiness)
    register_http_error_handlers(app)
    register_database_error_handlers(app)

    @app.errorhandler(CJError)
    async def cj_error(exc: CJError) -> tuple[Response, int]:
        code = getattr(exc, "http_code", exc.code.value)
        return jsonify(error_body(code, exc.message, getattr(exc, "field", None))), _STATUS.get(
            type(exc), 400
        )

    @app.get("/api/v1/batches/<batch_id>")
    @inject
    async def get_batch(batch_id: str, repo: FromDishka[BatchRepository]) -> dict[str, Any]:
        batch = await repo.get_batch(_batch_id(batch_id))
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        return batch_view(batch)

    @app.get("/api/v1/batches")
    @inject
    async def find_batch(repo: FromDishka[BatchRepository]) -> dict[str, Any]:
        entity_ref = request.args.get("entity_ref", "").strip()
        if not entity_ref:
            raise InvalidParameter("entity_ref", "the entity_ref query parameter is required")
        if len(entity_ref) > MAX_ID_CHARS:
            raise InvalidParameter("entity_ref", f"longer than {MAX_ID_CHARS} characters")
        problem = storable_text_problem(entity_ref)
        if problem is not None:
            raise InvalidParameter("entity_ref", problem)
        batch = await repo.newest_batch(entity_ref)
        if batch is None:
            raise BatchNotFound(f"no batch for entity_ref {entity_ref!r}")
        return batch_view(batch)

    @app.get("/api/v1/batches/<batch_id>/results")
    @inject
    async def get_results(batch_id: str, repo: FromDishka[BatchRepository]) -> dict[str, Any]:
        batch = await repo.get_batch(_batch_id(batch_id))
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

    @app.post("/api/v1/batches/<batch_id>/cancel")
    @inject
    async def cancel_batch(
        batch_id: str,
        transactions: FromDishka[BatchTransactions],
        workflow: FromDishka[CJWorkflow],
    ) -> dict[str, Any]:
        async with transactions() as repo:
            batch = await workflow.cancel(repo, _batch_id(batch_id))
        return batch_view(batch)

    QuartDishka(app=app, container=container)
    return app
