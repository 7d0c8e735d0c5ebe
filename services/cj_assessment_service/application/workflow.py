"""The CJ batch use cases behind one front: register a request, record comparison results, check
stale batches, hedge stragglers, cancel, erase a batch's texts.

Every method runs inside the caller's transaction (one per request event, one per fetched batch
of callbacks, one per monitor pass) through a `UnitOfWork`; outgoing events are staged in
the outbox of that same transaction. The work is done per area: `requests`, `callbacks`,
`monitor`, `hedging`, `outcomes` (finish and fail), `messages` (what is staged) and
`data_lifecycle` (erasure; the retention purge runs without the workflow).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from uuid import UUID

import numpy as np

from cj_assessment_service.application.callbacks import CallbackReport, CallbackUseCases
from cj_assessment_service.application.data_lifecycle import BatchErasure, ErasureReport
from cj_assessment_service.application.hedging import HedgeReport, HedgeUseCases
from cj_assessment_service.application.messages import BatchMessages
from cj_assessment_service.application.monitor import MonitorReport, MonitorUseCases
from cj_assessment_service.application.outcomes import BatchOutcomes
from cj_assessment_service.application.ports import BatchRecord, UnitOfWork
from cj_assessment_service.application.requests import RequestUseCases
from cj_assessment_service.config import Settings
from common_core.events.cj import CJAssessmentRequestV1
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMComparisonResultV1
from common_core.runtime.compute import ComputePool

__all__ = ["CJWorkflow", "CallbackReport", "HedgeReport", "MonitorReport"]


class CJWorkflow:
    """The batch use cases, configured by the service settings."""

    def __init__(
        self, settings: Settings, *, seed: int | None = None, compute: ComputePool | None = None
    ) -> None:
        """`compute` runs the fits, estimates and planning off the event loop (the kernel's
        pool; a pool of its own when none is given)."""
        self._random = random.Random(seed)
        compute = compute or ComputePool(settings.compute_workers)
        messages = BatchMessages(settings)
        outcomes = BatchOutcomes(settings, messages, compute)
        self._requests = RequestUseCases(settings, messages, outcomes, self._rng, compute)
        self._callbacks = CallbackUseCases(settings, messages, outcomes, self._rng, compute)
        self._monitor = MonitorUseCases(settings, outcomes)
        self._hedging = HedgeUseCases(settings, messages)
        self._erasure = BatchErasure(settings, outcomes)

    @property
    def hedging_enabled(self) -> bool:
        """True when stragglers may be hedged (HEDGE_MAX_SHARE > 0)."""
        return self._hedging.policy.enabled

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self._random.getrandbits(64))

    async def handle_request(
        self, uow: UnitOfWork, envelope: EventEnvelope[CJAssessmentRequestV1]
    ) -> UUID | None:
        """Create (and start) a batch for a request; None for a duplicate request."""
        return await self._requests.handle_request(uow, envelope)

    async def record_results(
        self,
        uow: UnitOfWork,
        results: Sequence[LLMComparisonResultV1],
    ) -> CallbackReport:
        """Record a fetched batch of comparison results in one transaction."""
        return await self._callbacks.record_results(uow, results)

    async def check_stale_batches(self, uow: UnitOfWork) -> MonitorReport:
        """One monitor pass: release human judges' pairs past their deadline (the batch then
        goes on as after new answers); partial scoring after the grace; recover or fail stuck
        batches."""
        released = await self._callbacks.release_due_human_pairs(uow)
        report = await self._monitor.check_stale_batches(uow)
        report.human_pairs_released = released
        return report

    async def hedge_stragglers(self, uow: UnitOfWork) -> HedgeReport:
        """One hedging pass: ask the stragglers of batches in their tail a second time."""
        return await self._hedging.hedge_stragglers(uow)

    async def cancel(self, uow: UnitOfWork, batch_id: UUID) -> BatchRecord:
        """Cancel a live batch (one failed event with code `cancelled`)."""
        return await self._monitor.cancel(uow, batch_id)

    async def erase(
        self, uow: UnitOfWork, batch_id: UUID, *, requested_by: str | None
    ) -> ErasureReport:
        """Erase a batch's essay texts from the CJ database, cancelling it if it is live."""
        return await self._erasure.erase(uow, batch_id, requested_by=requested_by)
