"""Assessments: the shipped definitions, start, submit, status."""

from __future__ import annotations

import structlog
from dishka import FromDishka
from quart import Blueprint
from quart_dishka import inject
from quart_schema import (
    document_request,
    security_scheme,
    validate_headers,
    validate_request,
    validate_response,
)

from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.adapters.identity import JwtIdentityReader
from submission_service.application import assessments as assessment_cases
from submission_service.application.ports import Transactions
from submission_service.application.scoring import RubricPolicy
from submission_service.entrypoints.http_openapi import PUBLIC, errors, links, optional_body
from submission_service.entrypoints.http_requests import (
    correlation_id,
    identify,
    optional_json_body,
    path_uuid,
)
from submission_service.entrypoints.http_schemas import (
    AssessmentOut,
    DefinitionListOut,
    DefinitionOut,
    ModuleOut,
    OptionOut,
    QuestionOut,
    StartAssessmentIn,
    StatusOut,
    SubmitHeaders,
    SubmitIn,
    SubmitOut,
)

log = structlog.get_logger(__name__)
bp = Blueprint("assessments", __name__)


@bp.get("/api/assessments/definitions")
@security_scheme(PUBLIC)
@errors(500)
@validate_response(DefinitionListOut, 200)
@inject
async def list_definitions(
    *,
    catalog: FromDishka[FileDefinitionCatalog],
) -> DefinitionListOut:
    """The shipped assessment definitions (without correct options)."""
    return DefinitionListOut(
        definitions=[
            DefinitionOut(
                id=d.id,
                title=d.title,
                description=d.description,
                modules=[
                    ModuleOut(
                        slug=m.slug,
                        title=m.title,
                        questions=[
                            QuestionOut(
                                id=q.id,
                                type=q.type.value,
                                prompt=q.prompt,
                                weight=q.weight,
                                options=[OptionOut(id=o.id, text=o.text) for o in q.options],
                                learning_outcome_id=q.learning_outcome_id,
                            )
                            for q in m.questions
                        ],
                    )
                    for m in d.modules
                ],
            )
            for d in catalog.all()
        ]
    )


@bp.post("/api/assessments")
@errors(400, 401, 404, 413, 415, 422, 503)
@links(
    201,
    post_submit={"assessment_id": "$response.body#/assessment_id"},
    get_status={"assessment_id": "$response.body#/assessment_id"},
    post_register_webhook={"assessment_id": "$response.body#/assessment_id"},
)
@validate_response(AssessmentOut, 201)
@validate_request(StartAssessmentIn)
@inject
async def start_assessment(
    *,
    data: StartAssessmentIn,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
    catalog: FromDishka[FileDefinitionCatalog],
) -> tuple[AssessmentOut, int]:
    """Start an attempt at a shipped definition."""
    identity = await identify(reader)
    async with transactions() as uow:
        record = await assessment_cases.start_assessment(uow, catalog, identity, data.definition_id)
    return AssessmentOut(
        assessment_id=record.id,
        definition_id=record.definition_id,
        status=record.status,
        created_at=record.created_at,
    ), 201


@bp.post("/api/assessments/<assessment_id>/submit")
@errors(400, 401, 404, 409, 413, 415, 422, 503)
@validate_response(SubmitOut, 202)
@optional_body
@document_request(SubmitIn)
@validate_headers(SubmitHeaders)
@inject
async def submit(
    *,
    assessment_id: str,
    headers: SubmitHeaders,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
    catalog: FromDishka[FileDefinitionCatalog],
    policy: FromDishka[RubricPolicy],
) -> tuple[SubmitOut, int]:
    """Submit with an Idempotency-Key: rule results now, essay scoring queued."""
    identity = await identify(reader)
    aid = path_uuid(assessment_id, "assessment_id")
    body = await optional_json_body(SubmitIn)
    async with transactions() as uow:
        status, reply = await assessment_cases.submit_assessment(
            uow,
            catalog,
            identity,
            aid,
            idempotency_key=headers.idempotency_key,
            request_body=body.model_dump(mode="json", exclude_none=True),
            policy=policy,
            correlation_id=correlation_id(),
        )
    return SubmitOut.model_validate(reply), status


@bp.get("/api/assessments/<assessment_id>/status")
@errors(400, 401, 404, 503)
@validate_response(StatusOut, 200)
@inject
async def status(
    *,
    assessment_id: str,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
) -> StatusOut:
    """Per-stage progress, job states, result and webhook deliveries."""
    identity = await identify(reader)
    aid = path_uuid(assessment_id, "assessment_id")
    async with transactions() as uow:
        status = await assessment_cases.assessment_status(uow, identity, aid)
    return StatusOut.model_validate(status)
