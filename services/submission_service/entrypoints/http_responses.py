"""Answers: create, update (the completion trigger), list with scores, claim."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint, request
from quart_dishka import inject
from quart_schema import security_scheme, validate_querystring, validate_request, validate_response

from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.adapters.identity import JwtIdentityReader, parse_anonymous_token
from submission_service.application import responses as response_cases
from submission_service.application.ports import ResponseEdit, Transactions
from submission_service.application.scoring import RubricPolicy
from submission_service.domain.errors import AuthenticationError, InvalidInputError
from submission_service.domain.identity import Identity
from submission_service.entrypoints.http_openapi import USER_ONLY, errors, links
from submission_service.entrypoints.http_requests import correlation_id, identify, path_uuid
from submission_service.entrypoints.http_schemas import (
    ClaimIn,
    ClaimOut,
    CreateResponseIn,
    ResponseListOut,
    ResponseListQuery,
    ResponseOut,
    ResponseWithScoresOut,
    UpdatedResponseOut,
    UpdateResponseIn,
)
from submission_service.entrypoints.http_views import response_out, score_out

bp = Blueprint("responses", __name__)


@bp.post("/api/assessments/responses")
@errors(400, 401, 413, 415, 422, 503)
@links(201, patch_update_response={"response_id": "$response.body#/id"})
@validate_response(ResponseOut, 201)
@validate_request(CreateResponseIn)
@inject
async def create_response(
    *,
    data: CreateResponseIn,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
) -> tuple[ResponseOut, int]:
    """Create an answer (never triggers scoring)."""
    identity = await identify(reader)
    async with transactions() as uow:
        record = await response_cases.create_response(
            uow,
            identity,
            response_cases.NewResponse(
                question_id=data.question_id,
                module_slug=data.module_slug,
                answer_text=data.answer_text,
                learning_outcome_id=data.learning_outcome_id,
                content_id=data.content_id,
                answer_metadata=data.answer_metadata,
                completed_at=data.completed_at,
            ),
        )
    return ResponseOut(**response_out(record)), 201


@bp.patch("/api/assessments/responses/<response_id>")
@errors(400, 401, 404, 409, 413, 415, 422, 503)
@validate_response(UpdatedResponseOut, 200)
@validate_request(UpdateResponseIn)
@inject
async def update_response(
    *,
    response_id: str,
    data: UpdateResponseIn,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
    catalog: FromDishka[FileDefinitionCatalog],
    policy: FromDishka[RubricPolicy],
) -> UpdatedResponseOut:
    """Update an answer; a body setting `completed_at` to a timestamp requests scoring."""
    identity = await identify(reader)
    rid = path_uuid(response_id, "response_id")
    edit = ResponseEdit(**{name: getattr(data, name) for name in data.model_fields_set})
    async with transactions() as uow:
        record, triggered = await response_cases.update_response(
            uow,
            identity,
            rid,
            edit,
            catalog=catalog,
            policy=policy,
            correlation_id=correlation_id(),
        )
    return UpdatedResponseOut(**response_out(record), scoring_requested=triggered)


@bp.get("/api/assessments/responses")
@errors(400, 401, 503)
@validate_response(ResponseListOut, 200)
@validate_querystring(ResponseListQuery)
@inject
async def list_responses(
    *,
    query_args: ResponseListQuery,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
) -> ResponseListOut:
    """The caller's answers, newest first, with scores."""
    identity = await identify(reader)
    async with transactions() as uow:
        rows = await response_cases.list_responses(
            uow.responses,
            identity,
            module_slug=query_args.module_slug,
            question_id=query_args.question_id,
            limit=query_args.limit,
        )
    return ResponseListOut(
        responses=[
            ResponseWithScoresOut(**response_out(record), scores=[score_out(s) for s in scores])
            for record, scores in rows
        ]
    )


@bp.post("/api/assessments/claim")
@security_scheme(USER_ONLY)
@errors(400, 401, 413, 415, 422, 503)
@validate_response(ClaimOut, 200)
@validate_request(ClaimIn)
@inject
async def claim(
    *,
    data: ClaimIn,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
) -> ClaimOut:
    """Move an anonymous token's answers to the logged-in user."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        raise AuthenticationError(
            "claiming needs a logged-in user (Authorization: Bearer <JWT>)",
            reason="user_required",
        )
    identity = Identity(user_id=await reader.user_from_header(authorization))
    token = data.anonymous_token
    if token is None:
        header = request.headers.get("X-Anonymous-Token")
        if not header:
            raise InvalidInputError(
                "name the anonymous token in the body or the X-Anonymous-Token header",
                reason="anonymous_token_required",
                field="anonymous_token",
            )
        token = parse_anonymous_token(header)
    async with transactions() as uow:
        claimed, skipped = await response_cases.claim_responses(uow.responses, identity, token)
    return ClaimOut(claimed=claimed, skipped=skipped)
