"""Typed HTTP response and query models of the CJ API (they generate the OpenAPI document).

The routes answer these models (`BatchOut.of(batch)`), and `validate_response` documents each,
so the document describes exactly what the routes answer. Only the fields a model was given
are written (`exclude_unset`): an optional field a batch does not have stays absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from werkzeug.routing import Rule

from cj_assessment_service.application.ports import BatchRecord
from cj_assessment_service.domain.batch import BatchState
from common_core.events.cj import CJCompletionReason, CJStatistics, EssayRanking, GradeProjection
from common_core.limits import Identifier
from common_core.runtime.http import ServiceOpenAPIProvider

F = TypeVar("F", bound=Callable[..., Any])

_RAW_REQUEST_BODY = "_cj_raw_request_body"


def raw_request_body(body: Mapping[str, Any]) -> Callable[[F], F]:
    """Document a request body that is not JSON (an OpenAPI Request Body Object as given)."""

    def decorator(func: F) -> F:
        setattr(func, _RAW_REQUEST_BODY, dict(body))
        return func

    return decorator


class CJOpenAPIProvider(ServiceOpenAPIProvider):
    """The shared document, with the request bodies routes describe by `raw_request_body`."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """Add the route's raw request body, if it has one; a documented JSON body is required
        (no route takes an empty one)."""
        paths, components = super().build_paths(rule)
        body = getattr(self._app.view_functions[rule.endpoint], _RAW_REQUEST_BODY, None)
        for operations in paths.values():
            for method, operation in operations.items():
                if body is not None:
                    operations[method] = {**operation, "requestBody": body}
                elif "requestBody" in operation:
                    required = {**operation["requestBody"], "required": True}
                    operations[method] = {**operation, "requestBody": required}
        return paths, components


def _isoformat(value: datetime) -> str:
    return value.isoformat()


# An RFC 3339 timestamp written by `isoformat()` (`+00:00`, not `Z`).
Timestamp = Annotated[
    datetime,
    PlainSerializer(_isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProgressOut(_Reply):
    """Comparisons of the batch: planned so far, answered (completed or failed) and pending."""

    essays: int
    budget: int = Field(description="The most comparisons the batch may make.")
    planned: int
    completed: int
    failed: int
    pending: int
    percent_complete: float = Field(description="Answered comparisons as a percentage of budget.")


class BatchErrorOut(_Reply):
    """Why a batch failed."""

    code: str | None
    message: str | None


class BatchOut(_Reply):
    """A batch's state and progress; `completion_reason` once completed, `error` once failed."""

    batch_id: UUID
    entity_ref: str
    state: BatchState
    correlation_id: UUID
    created_at: Timestamp
    updated_at: Timestamp
    progress: ProgressOut
    partial_scoring_triggered: bool
    completion_reason: CJCompletionReason | None = None
    error: BatchErrorOut | None = None

    @classmethod
    def of(cls, batch: BatchRecord) -> BatchOut:
        """A batch's state and progress; `completion_reason` and `error` only when it has them."""
        optional: dict[str, Any] = {}
        if batch.completion_reason is not None:
            optional["completion_reason"] = batch.completion_reason
        if batch.error_detail is not None:
            code, message = batch.error_detail.get("code"), batch.error_detail.get("message")
            optional["error"] = BatchErrorOut(code=code, message=message)
        return cls(
            batch_id=batch.id,
            entity_ref=batch.entity_ref,
            state=batch.state,
            correlation_id=batch.correlation_id,
            created_at=batch.created_at,
            updated_at=batch.updated_at,
            progress=ProgressOut(
                essays=batch.essay_count,
                budget=batch.budget,
                planned=batch.planned,
                completed=batch.completed,
                failed=batch.failed,
                pending=max(0, batch.pending),
                percent_complete=(
                    round(100.0 * batch.answered / batch.budget, 2) if batch.budget else 0.0
                ),
            ),
            partial_scoring_triggered=batch.partial_scoring_triggered,
            **optional,
        )


class BatchLookupQuery(BaseModel):
    """Which batch to find: the newest one of an upstream reference."""

    # Blank after trimming is answered as missing: the document asks for a non-space character
    # (and, like every identifier, no NUL).
    entity_ref: Annotated[
        Identifier, Field(json_schema_extra={"pattern": r"^[^\u0000]*\S[^\u0000]*$"})
    ] = Field(description="The upstream batch id the request carried.")


class BatchResultsOut(_Reply):
    """A completed batch's ranking, as its `CJAssessmentCompletedV1` event carried it."""

    batch_id: UUID
    entity_ref: str
    completion_reason: CJCompletionReason | None
    rankings: list[EssayRanking]
    statistics: CJStatistics
    grade_projections: list[GradeProjection] | None = None
    completion_detail: str | None = Field(
        default=None,
        description="What the completion reason does not say (e.g. human judges' comparisons "
        "released unjudged at their deadline).",
    )


class EssaySetOut(_Reply):
    """A stored essay set: the id a request names, the count, the digest and the expiry."""

    essay_set_id: UUID
    essay_count: int
    content_sha256: str = Field(
        description="SHA-256 of the essays in upload order (hex); a request may repeat it."
    )
    expires_at: Timestamp


class ErasedOut(_Reply):
    """What one erasure removed from the CJ database (every kind, zero when nothing was left)."""

    essay_texts: int = Field(description="Essay texts blanked in the batch's essays.")
    outbox_requests: int = Field(
        description="Comparison requests (two essays each) deleted from the outbox, published "
        "or not."
    )
    essay_sets: int = Field(description="The uploaded essay set the batch was read from (0/1).")
    essay_set_texts: int = Field(description="Texts of that essay set deleted with it.")
    batches_cancelled: int = Field(
        description="1 when the batch was live and so cancelled (its failed event has code "
        "`cancelled`)."
    )


class ErasureOut(_Reply):
    """The outcome of an erasure request, and the id of its audit record."""

    batch_id: UUID
    erased: ErasedOut
    already_erased: bool = Field(description="True when an earlier erasure of the batch ran.")
    audit_id: UUID = Field(description="The audit record of this request (`cj_erasures`).")


class JudgeOut(_Reply):
    """An invited human judge: the private link to their judging page (a signed token valid
    until `expires_at`, the batch's human deadline) and their progress."""

    judge_id: str
    display_name: str
    link: str = Field(
        description="`<JUDGE_PAGE_BASE_URL>/judge/<token>`; give it to this judge only."
    )
    expires_at: Timestamp
    assigned: int = Field(description="Comparisons given to the judge (released ones included).")
    judged: int
    skipped: int = Field(description="Skipped and not judged yet (they come back last).")
    remaining: int = Field(description="Comparisons the judge can still judge.")


class JudgesOut(_Reply):
    """A batch's human judges with their links and progress."""

    batch_id: UUID
    judges: list[JudgeOut]
