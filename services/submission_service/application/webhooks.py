"""Webhooks: registration behind the SSRF guard, and signed delivery with retries."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode

from common_core.runtime.error_text import describe_error
from common_core.runtime.tracing import traced
from submission_service.application.ports import (
    DeliveryQueue,
    HostResolver,
    UnitOfWork,
    WebhookDelivery,
    WebhookSender,
)
from submission_service.application.scoring import completion_payload
from submission_service.domain.errors import (
    InvalidInputError,
    NotFoundError,
    WebhookTargetRefusedError,
)
from submission_service.domain.identity import Identity
from submission_service.domain.webhooks import (
    SIGNATURE_HEADER,
    WebhookTarget,
    backoff_seconds,
    first_refusal,
    host_is_allowlisted,
    signature_header,
    split_webhook_url,
)
from submission_service.metrics import WEBHOOK_DELIVERY_ATTEMPTS

log = structlog.get_logger(__name__)

NOT_DECRYPTABLE = "the webhook's signing secret does not decrypt with WEBHOOK_SECRET_KEYS"


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """Where webhooks may go and how hard delivery tries."""

    allowlist: tuple[str, ...]
    max_attempts: int
    backoff_base_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float


async def resolve_target(
    url: str, *, resolver: HostResolver, allowlist: Sequence[str]
) -> WebhookTarget:
    """Resolve the URL's host once and check every address it has (allowlisted hosts pass).

    Refuses URLs that are not http(s) and hosts that do not resolve or have any internal
    address. The returned addresses are the only ones a delivery may connect to."""
    location = split_webhook_url(url)
    try:
        addresses = await resolver.resolve(location.host, location.port)
    except OSError as exc:
        raise WebhookTargetRefusedError(
            "the webhook host does not resolve", reason="webhook_host_unresolvable", field="url"
        ) from exc
    if not addresses:
        raise WebhookTargetRefusedError(
            "the webhook host does not resolve", reason="webhook_host_unresolvable", field="url"
        )
    refused = None if host_is_allowlisted(location.host, allowlist) else first_refusal(addresses)
    if refused is not None:
        address, why = refused
        raise WebhookTargetRefusedError(
            f"the webhook URL resolves to a refused address ({why})",
            field="url",
            details={"address": address, "reason": why},
        )
    return WebhookTarget(location, tuple(addresses))


async def check_target(url: str, *, resolver: HostResolver, allowlist: Sequence[str]) -> None:
    """Refuse URLs that are not http(s) or resolve to internal addresses (unless allowlisted)."""
    await resolve_target(url, resolver=resolver, allowlist=allowlist)


async def register_webhook(
    uow: UnitOfWork,
    identity: Identity,
    assessment_id: UUID,
    url: str,
    *,
    resolver: HostResolver,
    policy: WebhookPolicy,
) -> tuple[UUID, str]:
    """Register a callback URL; returns its id and the signing secret (shown only once)."""
    assessment = await uow.assessments.assessment_for(identity, assessment_id)
    if assessment is None:
        raise NotFoundError("no such assessment for this identity", reason="assessment_not_found")
    await check_target(url, resolver=resolver, allowlist=policy.allowlist)
    webhook_id = uuid4()
    secret = secrets.token_hex(32)
    await uow.webhooks.insert_webhook(webhook_id, assessment_id, url, secret)
    if assessment.status == "completed" and assessment.completed_at and assessment.result:
        # Registered after completion: deliver the outcome right away.
        await uow.webhooks.enqueue_delivery(
            webhook_id,
            "assessment.completed",
            completion_payload(assessment, assessment.result, assessment.completed_at),
        )
    return webhook_id, secret


async def deliver_due(
    queue: DeliveryQueue,
    sender: WebhookSender,
    resolver: HostResolver,
    policy: WebhookPolicy,
    *,
    batch_size: int = 20,
) -> int:
    """One dispatcher pass: deliver what is due; returns how many attempts were made."""
    due = await queue.lease_due(batch_size, lease_seconds=policy.timeout_seconds + 30.0)
    for delivery in due:
        await _attempt(queue, sender, resolver, policy, delivery)
    return len(due)


async def _attempt(
    queue: DeliveryQueue,
    sender: WebhookSender,
    resolver: HostResolver,
    policy: WebhookPolicy,
    delivery: WebhookDelivery,
) -> None:
    attempt_no = delivery.attempt_count + 1
    with traced(
        "webhook deliver",
        kind=SpanKind.CLIENT,
        attributes={
            "huleedu.webhook.delivery_id": str(delivery.id),
            "huleedu.webhook.event": delivery.event,
            "huleedu.webhook.attempt": attempt_no,
        },
    ) as span:
        status, error, refused = await _send(sender, resolver, policy, delivery)
        if span is not None:
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, "refused" if refused else "failed"))
    succeeded = error is None
    give_up = not succeeded and attempt_no >= policy.max_attempts
    retry_at = None
    if not succeeded and not give_up:
        delay = backoff_seconds(
            attempt_no, base=policy.backoff_base_seconds, maximum=policy.backoff_max_seconds
        )
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
    await queue.record_attempt(
        delivery.id,
        succeeded=succeeded,
        http_status=status,
        error=error,
        give_up=give_up,
        retry_at=retry_at,
    )
    outcome = (
        "delivered" if succeeded else "refused" if refused else "failed" if give_up else "retry"
    )
    WEBHOOK_DELIVERY_ATTEMPTS.labels(outcome=outcome).inc()
    log.info(
        "webhook_delivery_attempt",
        delivery_id=str(delivery.id),
        attempt=attempt_no,
        outcome=outcome,
        http_status=status,
    )


async def _send(
    sender: WebhookSender,
    resolver: HostResolver,
    policy: WebhookPolicy,
    delivery: WebhookDelivery,
) -> tuple[int | None, str | None, bool]:
    """One signed POST of the delivery: (HTTP status, error, refused before sending)."""
    if delivery.secret is None:
        log.error("webhook_secret_undecryptable", webhook_id=str(delivery.webhook_id))
        return None, f"refused: {NOT_DECRYPTABLE}", True
    try:
        # Resolved and checked at every attempt (DNS may have changed since registration); the
        # sender connects to exactly these checked addresses, never to a later DNS answer.
        target = await resolve_target(delivery.url, resolver=resolver, allowlist=policy.allowlist)
    except (WebhookTargetRefusedError, InvalidInputError) as exc:
        return None, f"refused: {exc.message}", True
    body = json.dumps(
        {**delivery.payload, "delivery_id": str(delivery.id)}, separators=(",", ":")
    ).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(delivery.secret, int(time.time()), body),
        "X-HuleEdu-Event": delivery.event,
        "X-HuleEdu-Delivery": str(delivery.id),
    }
    try:
        status = await sender.post(target, body, headers)
    except Exception as exc:
        return None, describe_error(exc, max_chars=500), False
    return status, None if 200 <= status < 300 else f"HTTP {status}", False
