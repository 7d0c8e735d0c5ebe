"""Webhooks: registrations, deliveries and the dispatcher's delivery queue (in the unit of
work), and the re-encryption of stored secrets (a transaction of its own)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from submission_service.adapters.tables import (
    webhook_deliveries,
    webhook_delivery_attempts,
    webhooks,
)
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.application.ports import DeliveryAttempt, WebhookDelivery, WebhookRecord


class PostgresWebhooks:
    """Registered webhooks and their deliveries; secrets stored only as ciphertext."""

    def __init__(self, session: AsyncSession, secret_box: WebhookSecretBox) -> None:
        self._session = session
        self._secret_box = secret_box

    async def insert_webhook(
        self, webhook_id: UUID, assessment_id: UUID, url: str, secret: str
    ) -> None:
        """Store a webhook; its secret only as ciphertext."""
        await self._session.execute(
            webhooks.insert().values(
                id=webhook_id,
                assessment_id=assessment_id,
                url=url,
                secret_ciphertext=self._secret_box.encrypt(secret),
            )
        )

    async def enqueue_delivery(self, webhook_id: UUID, event: str, payload: dict[str, Any]) -> None:
        """One pending delivery."""
        await self._session.execute(
            webhook_deliveries.insert().values(
                id=uuid4(), webhook_id=webhook_id, event=event, payload=payload, status="pending"
            )
        )

    async def enqueue_deliveries(
        self, assessment_id: UUID, event: str, payload: dict[str, Any]
    ) -> int:
        """A pending delivery for each webhook of the assessment."""
        ids = (
            (
                await self._session.execute(
                    select(webhooks.c.id).where(webhooks.c.assessment_id == assessment_id)
                )
            )
            .scalars()
            .all()
        )
        for webhook_id in ids:
            await self.enqueue_delivery(webhook_id, event, payload)
        return len(ids)

    async def webhooks_of(self, assessment_id: UUID) -> list[WebhookRecord]:
        """Webhooks with deliveries and attempts."""
        hooks = (
            await self._session.execute(
                select(webhooks)
                .where(webhooks.c.assessment_id == assessment_id)
                .order_by(webhooks.c.created_at)
            )
        ).all()
        if not hooks:
            return []
        deliveries = (
            await self._session.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id.in_([h.id for h in hooks]))
                .order_by(webhook_deliveries.c.created_at)
            )
        ).all()
        attempts = (
            (
                await self._session.execute(
                    select(webhook_delivery_attempts)
                    .where(webhook_delivery_attempts.c.delivery_id.in_([d.id for d in deliveries]))
                    .order_by(webhook_delivery_attempts.c.id)
                )
            ).all()
            if deliveries
            else []
        )
        by_delivery: dict[UUID, list[DeliveryAttempt]] = {}
        for a in attempts:
            by_delivery.setdefault(a.delivery_id, []).append(
                DeliveryAttempt(a.attempt, a.attempted_at, a.succeeded, a.http_status, a.error)
            )
        secrets = {h.id: self._secret_box.decrypt(h.secret_ciphertext) for h in hooks}
        urls = {h.id: h.url for h in hooks}
        by_hook: dict[UUID, list[WebhookDelivery]] = {}
        for d in deliveries:
            by_hook.setdefault(d.webhook_id, []).append(
                WebhookDelivery(
                    id=d.id,
                    webhook_id=d.webhook_id,
                    url=urls[d.webhook_id],
                    secret=secrets[d.webhook_id],
                    event=d.event,
                    payload=d.payload,
                    status=d.status,
                    attempt_count=d.attempts,
                    attempts=by_delivery.get(d.id, []),
                )
            )
        return [
            WebhookRecord(h.id, h.assessment_id, h.url, h.created_at, by_hook.get(h.id, []))
            for h in hooks
        ]

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        """Due pending deliveries, pushed `lease_seconds` into the future while in hand (the lease
        holds once the caller commits)."""
        rows = (
            await self._session.execute(
                select(webhook_deliveries, webhooks.c.url, webhooks.c.secret_ciphertext)
                .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                .where(
                    webhook_deliveries.c.status == "pending",
                    webhook_deliveries.c.next_attempt_at <= func.now(),
                )
                .order_by(webhook_deliveries.c.next_attempt_at)
                .limit(limit)
                .with_for_update(of=webhook_deliveries, skip_locked=True)
            )
        ).all()
        if rows:
            await self._session.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_([r.id for r in rows]))
                .values(next_attempt_at=datetime.now(UTC) + timedelta(seconds=lease_seconds))
            )
        return [
            WebhookDelivery(
                id=r.id,
                webhook_id=r.webhook_id,
                url=r.url,
                secret=self._secret_box.decrypt(r.secret_ciphertext),
                event=r.event,
                payload=r.payload,
                status=r.status,
                attempt_count=r.attempts,
            )
            for r in rows
        ]

    async def record_attempt(
        self,
        delivery_id: UUID,
        *,
        succeeded: bool,
        http_status: int | None,
        error: str | None,
        give_up: bool,
        retry_at: datetime | None,
    ) -> int:
        """Record the attempt and move the delivery on."""
        attempt = (
            await self._session.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(attempts=webhook_deliveries.c.attempts + 1)
                .returning(webhook_deliveries.c.attempts)
            )
        ).scalar_one()
        values: dict[str, Any] = {}
        if succeeded:
            values = {"status": "delivered", "delivered_at": func.now()}
        elif give_up:
            values = {"status": "failed"}
        elif retry_at is not None:
            values = {"next_attempt_at": retry_at}
        if values:
            await self._session.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id)
                .values(**values)
            )
        await self._session.execute(
            webhook_delivery_attempts.insert().values(
                delivery_id=delivery_id,
                attempt=attempt,
                succeeded=succeeded,
                http_status=http_status,
                error=error,
            )
        )
        return int(attempt)


async def reencrypt_webhook_secrets(
    sessions: async_sessionmaker[AsyncSession], secret_box: WebhookSecretBox
) -> tuple[int, int]:
    """Re-encrypt stored secrets that are not under the primary key; (re-encrypted, unreadable)."""
    reencrypted = unreadable = 0
    async with sessions.begin() as session:
        rows = (
            await session.execute(
                select(webhooks.c.id, webhooks.c.secret_ciphertext).with_for_update()
            )
        ).all()
        for row in rows:
            if secret_box.decrypt(row.secret_ciphertext) is None:
                unreadable += 1
            elif secret_box.needs_rotation(row.secret_ciphertext):
                await session.execute(
                    update(webhooks)
                    .where(webhooks.c.id == row.id)
                    .values(secret_ciphertext=secret_box.rotate(row.secret_ciphertext))
                )
                reencrypted += 1
    return reencrypted, unreadable
