"""The organiser's judge API: invite human judges to a running batch, and read their private
links and progress (the judges' own page: `http_judging.py`)."""

from __future__ import annotations

from typing import Any

from dishka import FromDishka
from pydantic import ValidationError
from quart import Blueprint, Response, jsonify, request
from quart_dishka import inject
from quart_schema import document_request, tag_blueprint, validate_response

from cj_assessment_service.application.human_judging import HumanJudgingUseCases, JudgeLink
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.domain.errors import BatchNotFound, HumanJudgingNotConfigured
from cj_assessment_service.entrypoints.http_batches import parse_batch_id
from cj_assessment_service.entrypoints.http_errors import InvalidBody
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
@document_request(HumanJudgingRequest)
@validate_response(JudgesOut, 201)
@errors(400, 404, 409, 422, 503)
@authenticated
@inject
async def start_human_judging(
    batch_id: str,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> tuple[JudgesOut, int]:
    """Invite human judges to a running batch: who, their share of the comparisons and the
    deadline at which the pairs they have not judged are released to the AI. Answers each
    judge's private link (409 when the batch has finished or already has human judges; 400 for
    a deadline in the past; 422 for a body outside the model, `judge_id` twice included; 503
    without `JUDGE_LINK_SECRET`).

    Scope: `cj:write`."""
    parsed = parse_batch_id(batch_id)
    body = _judging_request(await request.get_json(silent=True))
    async with transactions() as uow:
        if isinstance(body, InvalidBody):
            # A body of the schema's shape that the contract refuses (a judge id twice) is
            # answered once the batch is known: an unknown batch is 404 whatever the body.
            if await uow.batches.get(parsed) is None:
                raise BatchNotFound(f"no batch {batch_id}")
            raise body
        links = await use_cases.start_human_judging(uow, parsed, body)
    return _judges_out(batch_id, links), 201


def _judging_request(body: Any) -> HumanJudgingRequest | InvalidBody:
    """The request body, or the refusal of a body of the right shape that breaks a rule across
    fields (to raise once the batch is known); raises the refusal of a body of the wrong shape
    (422 naming its field)."""
    try:
        return HumanJudgingRequest.model_validate(body)
    except ValidationError as exc:
        problems = exc.errors()
        first = problems[0]
        across_fields = all(p["type"] == "value_error" and not p["loc"] for p in problems)
        if across_fields:
            return InvalidBody("judges", first["msg"])
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidBody(field, first["msg"]) from None


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
