"""The webhook dispatcher: a background loop delivering due webhook payloads with retries."""

from __future__ import annotations

from common_core.runtime.periodic import PeriodicWorker
from submission_service.application.ports import DeliveryQueue, HostResolver, WebhookSender
from submission_service.application.webhooks import WebhookPolicy, deliver_due


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
