"""Background loops: the webhook dispatcher (due payloads, with retries) and the retention
purge of finished answers' texts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from common_core.runtime.metrics import ROWS_PURGED
from common_core.runtime.periodic import PeriodicWorker
from submission_service.application.data_lifecycle import LifecycleTransactions, purge_answer_texts
from submission_service.application.ports import (
    DeliveryQueue,
    HostResolver,
    Transactions,
    WebhookDelivery,
    WebhookSender,
)
from submission_service.application.webhooks import WebhookPolicy, deliver_due


class CommittedDeliveryQueue:
    """The delivery queue the dispatcher works on: each call is one unit of work, committed when
    it returns (the lease before anything is sent, each attempt as soon as it is made)."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        """Lease the due deliveries and commit the lease."""
        async with self._transactions() as uow:
            return await uow.webhooks.lease_due(limit, lease_seconds)

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
        """Record one attempt and commit it."""
        async with self._transactions() as uow:
            return await uow.webhooks.record_attempt(
                delivery_id,
                succeeded=succeeded,
                http_status=http_status,
                error=error,
                give_up=give_up,
                retry_at=retry_at,
            )


class WebhookDispatcher(PeriodicWorker):
    """Polls the delivery queue; several dispatchers may run (deliveries are leased)."""

    name = "webhook"

    def __init__(
        self,
        queue: DeliveryQueue,
        sender: WebhookSender,
        resolver: HostResolver,
        policy: WebhookPolicy,
        *,
        poll_interval_seconds: float,
    ) -> None:
        super().__init__(interval_seconds=poll_interval_seconds)
        self._queue = queue
        self._sender = sender
        self._resolver = resolver
        self._policy = policy

    async def run_pass(self) -> bool:
        """Deliver what is due; True when something was attempted (more may be waiting)."""
        attempted = await deliver_due(self._queue, self._sender, self._resolver, self._policy)
        return bool(attempted)


PURGED_KIND = "submission_answer_texts"


class AnswerTextPurge(PeriodicWorker):
    """Empties the texts of answers whose scoring finished more than `retention` ago, one
    bounded transaction (`batch_size` answers) at a time; several replicas may run it (each
    skips the answers another has locked)."""

    name = "retention"

    def __init__(
        self,
        transactions: LifecycleTransactions,
        *,
        retention: timedelta,
        batch_size: int,
        interval_seconds: float,
    ) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._transactions = transactions
        self._retention = retention
        self._batch_size = batch_size

    async def run_pass(self) -> bool:
        """Purge one batch; True when it was full (more may be waiting)."""
        cutoff = datetime.now(UTC) - self._retention
        async with self._transactions() as uow:
            purged = await purge_answer_texts(uow, cutoff=cutoff, limit=self._batch_size)
            if purged:
                uow.after_commit(lambda: ROWS_PURGED.labels(kind=PURGED_KIND).inc(purged))
        return purged >= self._batch_size
