"""Records as HTTP responses: the JSON shape of a batch."""

from __future__ import annotations

from typing import Any

from cj_assessment_service.application.ports import BatchRecord


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
