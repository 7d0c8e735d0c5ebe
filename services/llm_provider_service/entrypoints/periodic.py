"""Periodic workers of batch mode: submitting due chunks (and reconciling lost submissions), and
polling submitted provider batches. Safe with several instances: rows are claimed with
`FOR UPDATE SKIP LOCKED` or leased."""

from __future__ import annotations

import time

from common_core.runtime.periodic import PeriodicWorker
from llm_provider_service.application.batching import BatchPoller, BatchSubmitter


class BatchSubmissionWorker(PeriodicWorker):
    """Reconciles chunks whose submission was lost, then submits due chunks."""

    name = "batch_submission"

    def __init__(self, submitter: BatchSubmitter, *, interval_seconds: float) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._submitter = submitter

    async def run_pass(self) -> bool:
        """One reconciliation and one submission; True when either found work."""
        reconciled = await self._submitter.reconcile_one()
        submitted = await self._submitter.submit_due()
        return reconciled or submitted


class BatchPollWorker(PeriodicWorker):
    """Checks the provider batches whose next status check is due."""

    name = "batch_poll"

    def __init__(
        self, poller: BatchPoller, *, interval_seconds: float, purge_every_seconds: float = 3600.0
    ) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._poller = poller
        self._purge_every = purge_every_seconds
        self._last_purge = time.monotonic()

    async def run_pass(self) -> bool:
        """Check the due batches (and now and then forget old answered requests); True when the
        pass was full (more may be due)."""
        if time.monotonic() - self._last_purge >= self._purge_every:
            self._last_purge = time.monotonic()
            await self._poller.purge()
        return await self._poller.poll_due() >= self._poller.batches_per_pass
