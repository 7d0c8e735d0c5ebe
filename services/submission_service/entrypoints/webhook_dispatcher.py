"""The webhook dispatcher: a background loop delivering due webhook payloads with retries."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from submission_service.application.webhooks import (
    DeliveryQueue,
    HostResolver,
    WebhookPolicy,
    WebhookSender,
    deliver_due,
)

log = structlog.get_logger(__name__)


class WebhookDispatcher:
    """Polls the delivery queue; several dispatchers may run (deliveries are leased)."""

    def __init__(
        self,
        queue: DeliveryQueue,
        sender: WebhookSender,
        resolver: HostResolver,
        policy: WebhookPolicy,
        *,
        poll_interval_seconds: float,
    ) -> None:
        self._queue = queue
        self._sender = sender
        self._resolver = resolver
        self._policy = policy
        self._interval = poll_interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the pass in hand and return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Deliver until stopped; a failing pass is logged and retried on the next tick."""
        while not self._stopping.is_set():
            try:
                attempted = await deliver_due(
                    self._queue, self._sender, self._resolver, self._policy
                )
            except Exception as exc:
                log.warning("webhook_pass_failed", error=f"{type(exc).__name__}: {exc}")
                attempted = 0
            if attempted:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
