"""The organiser's judge API: invite human judges to a running batch, and read their private
links and progress (the judges' own page: `http_judging.py`)."""

from __future__ import annotations

from dishka import FromDishka
from pydantic import ValidationError
from quart import Blueprint, Response, jsonify
from quart_dishka import inject
from quart_schema import (
    RequestSchemaValidationError,
    tag_blueprint,
    validate_request,
    validate_response,
)

from cj_assessment_service.application.human_judging import HumanJudgingUseCases, JudgeLink
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.domain.errors import HumanJudgingNotConfigured
from cj_assessment_service.entrypoints.http_batches import parse_batch_id
from cj_assessment_service.entrypoints.http_schemas import JudgeOut, JudgesOut
from common_core.events.cj import HumanJudgingRequest
from common_core.runtime.http import error_body, errors
from common_core.runtime.http_auth import authenticated

# Not a transient outage, but the documented 503 of every route says when to ask again.
NOT_CONFIGURED_RETRY_AFTER_SECONDS = 3600

judges = Blueprint("judges", __name__)
tag_blueprint(judges, ["human judges"])


def _judges_out(batch_id: str, links: list[JudgeLink]) -> JudgesOut:
    return JudgesOut(
        batch_id=parse_batch_id(batch_id),
        judges=[
            JudgeOut(
                judge_id=link.judge_id,
                display_name=link.display_name,
                link=link.link,
                expires_at=link.expires_at,
                assigned=link.progress.assigned,
                judged=link.progress.judged,
                skipped=link.progress.skipped,
                remaining=link.progress.remaining,
            )
            for link in links
        ],
    )


@judges.post("/api/v1/batches/<batch_id>/human-judging")
@validate_request(HumanJudgingRequest)
@validate_response(JudgesOut, 201)
@errors(400, 404, 409, 422, 503)
@authenticated
@inject
async def start_human_judging(
    batch_id: str,
    data: HumanJudgingRequest,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> tuple[JudgesOut, int]:
    """Invite human judges to a running batch: who, their share of the comparisons and the
    deadline at which the pairs they have not judged are released to the AI. Answers each
    judge's private link (409 when the batch has finished or already has human judges; 400 for
    a deadline in the past; 503 without `JUDGE_LINK_SECRET`).

    Scope: `cj:write`."""
    parsed = parse_batch_id(batch_id)
    async with transactions() as uow:
        links = await use_cases.start_human_judging(uow, parsed, data)
    return _judges_out(batch_id, links), 201


@judges.get("/api/v1/batches/<batch_id>/judges")
@validate_response(JudgesOut)
@errors(400, 404, 503)
@authenticated
@inject
async def list_judges(
    batch_id: str,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> JudgesOut:
    """A batch's human judges with their private links (valid until the deadline) and progress:
    comparisons assigned, judged, skipped and remaining (empty without human judges).

    Scope: `cj:read`."""
    parsed = parse_batch_id(batch_id)
    async with transactions() as uow:
        links = await use_cases.judges(uow, parsed)
    return _judges_out(batch_id, links)


@judges.errorhandler(HumanJudgingNotConfigured)
async def not_configured(exc: HumanJudgingNotConfigured) -> tuple[Response, int]:
    """503 with Retry-After, as every documented 503."""
    response = jsonify(error_body(exc.http_code, exc.message))
    response.headers["Retry-After"] = str(NOT_CONFIGURED_RETRY_AFTER_SECONDS)
    return response, 503


@judges.errorhandler(RequestSchemaValidationError)
async def invalid_body(exc: RequestSchemaValidationError) -> tuple[Response, int]:
    """422 naming the first invalid field of the body."""
    inner = exc.validation_error
    if isinstance(inner, ValidationError) and inner.errors():
        first = inner.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        return jsonify(error_body("validation_error", first["msg"], field)), 422
    return jsonify(error_body("validation_error", str(inner), "body")), 422
