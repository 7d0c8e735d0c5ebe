"""Webhooks: registering an assessment's completion callback."""

from __future__ import annotations

from dishka import FromDishka
from quart import Blueprint
from quart_dishka import inject
from quart_schema import validate_request, validate_response

from submission_service.adapters.identity import JwtIdentityReader
from submission_service.application import webhooks as webhook_cases
from submission_service.application.ports import HostResolver, Transactions
from submission_service.application.webhooks import WebhookPolicy
from submission_service.domain.webhooks import SIGNATURE_HEADER
from submission_service.entrypoints.http_openapi import errors
from submission_service.entrypoints.http_requests import identify, path_uuid
from submission_service.entrypoints.http_schemas import WebhookIn, WebhookOut

bp = Blueprint("webhooks", __name__)


@bp.post("/api/assessments/<assessment_id>/webhook")
@errors(400, 401, 403, 404, 413, 415, 422, 503)
@validate_response(WebhookOut, 201)
@validate_request(WebhookIn)
@inject
async def register_webhook(
    *,
    assessment_id: str,
    data: WebhookIn,
    reader: FromDishka[JwtIdentityReader],
    transactions: FromDishka[Transactions],
    resolver: FromDishka[HostResolver],
    policy: FromDishka[WebhookPolicy],
) -> tuple[WebhookOut, int]:
    """Register a completion callback URL (SSRF-guarded); returns the signing secret."""
    identity = await identify(reader)
    aid = path_uuid(assessment_id, "assessment_id")
    async with transactions() as uow:
        webhook_id, secret = await webhook_cases.register_webhook(
            uow, identity, aid, data.url, resolver=resolver, policy=policy
        )
    return WebhookOut(
        webhook_id=webhook_id, url=data.url, secret=secret, signature_header=SIGNATURE_HEADER
    ), 201
