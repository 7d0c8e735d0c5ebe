"""Operators' erasure route: remove one learner's answer texts and every copy of them."""

from __future__ import annotations

from typing import Any

import structlog
from dishka import FromDishka
from pydantic import ValidationError
from quart import Blueprint, request
from quart_dishka import inject
from quart_schema import document_request, security_scheme, validate_response

from submission_service.adapters.identity import JwtIdentityReader
from submission_service.application.data_lifecycle import LifecycleTransactions, erase_learner
from submission_service.application.scoring import RubricPolicy
from submission_service.domain.errors import InvalidInputError
from submission_service.domain.identity import Identity
from submission_service.entrypoints.http_openapi import USER_ONLY, errors
from submission_service.entrypoints.http_requests import correlation_id
from submission_service.entrypoints.http_schemas import (
    ErasureIn,
    ErasureOut,
    TokenErasureIn,
    UserErasureIn,
)

log = structlog.get_logger(__name__)

bp = Blueprint("erasures", __name__)

ERASE_SCOPE = "submission:erase"
_SUBJECT_FIELDS = ("user_id", "anonymous_token")


def erasure_subject(body: Any) -> Identity:
    """The learner a request body names; InvalidInputError (400, with the field and the reason)
    unless it is an object with exactly one of `user_id` or `anonymous_token`."""
    if not isinstance(body, dict):
        raise InvalidInputError(
            "send a JSON object with user_id or anonymous_token", reason="invalid_body"
        )
    for name in body:
        if name not in _SUBJECT_FIELDS:
            raise InvalidInputError(f"{name}: not a field", reason="unknown_field", field=name)
    named = [name for name in _SUBJECT_FIELDS if name in body]
    if len(named) != 1:
        raise InvalidInputError(
            "give exactly one of user_id or anonymous_token",
            reason="exactly_one_subject",
            field=named[-1] if named else "user_id",
        )
    field = named[0]
    try:
        subject = (UserErasureIn if field == "user_id" else TokenErasureIn).model_validate(body)
    except ValidationError as exc:
        reason = "invalid_user_id" if field == "user_id" else "invalid_anonymous_token"
        message = exc.errors(include_url=False)[0]["msg"]
        raise InvalidInputError(f"{field}: {message}", reason=reason, field=field) from None
    if isinstance(subject, UserErasureIn):
        return Identity(user_id=subject.user_id)
    return Identity(anonymous_token=subject.anonymous_token)


@bp.post("/api/erasures/learners")
@security_scheme(USER_ONLY)
@errors(400, 401, 403, 413, 415, 503)
@validate_response(ErasureOut, 200)
@document_request(ErasureIn)
@inject
async def erase_learner_data(
    *,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[LifecycleTransactions],
    policy: FromDishka[RubricPolicy],
) -> ErasureOut:
    """Erase one learner's answer texts and their copies (operator scope `submission:erase`);
    idempotent, with an audit record holding counts and a hash of the subject."""
    operator = await reader.operator_with_scope(request.headers.get("Authorization"), ERASE_SCOPE)
    subject = erasure_subject(await request.get_json(silent=False))
    async with transactions() as uow:
        report = await erase_learner(
            uow,
            subject,
            operator_subject=operator,
            policy=policy,
            correlation_id=correlation_id(),
        )
    log.info(
        "learner_erased",
        subject=report.subject_kind,
        audit_id=str(report.audit_id),
        already_erased=report.already_erased,
        **report.erased,
    )
    return ErasureOut(
        subject=report.subject_kind,
        erased=report.erased,
        already_erased=report.already_erased,
        audit_id=report.audit_id,
    )
