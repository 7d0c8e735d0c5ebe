"""The periodic workers: the batch monitor (stale batches), the tail hedger (stragglers), the
essay-set janitor (expired uploads) and the essay-text janitor (texts of finished batches past
their retention); all safe with several instances."""

from __future__ import annotations

from abc import abstractmethod
from datetime import UTC, datetime, timedelta

import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.data_lifecycle import (
    PurgeReport,
    count_purged,
    purge_expired_texts,
)
from cj_assessment_service.application.essay_sets import delete_expired_essay_sets
from cj_assessment_service.application.hedging import HedgeReport
from cj_assessment_service.application.monitor import MonitorReport
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.domain.batch import BatchState
from common_core.runtime.periodic import PeriodicWorker

log = structlog.get_logger(__name__)


class _WorkflowWorker(PeriodicWorker):
    """A periodic pass of the CJ workflow in its own unit of work; the next pass waits for the
    interval."""

    def __init__(
        self,
        transactions: Transactions,
        workflow: CJWorkflow,
        *,
        interval_seconds: float,
    ) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._transactions = transactions
        self._workflow = workflow

    async def run_pass(self) -> bool:
        """One pass; never more work waiting at once (the interval paces the passes)."""
        await self.run_once()
        return False

    @abstractmethod
    async def run_once(self) -> object:
        """One pass (a report for metrics and tests)."""


class BatchMonitor(_WorkflowWorker):
    """Runs `CJWorkflow.check_stale_batches` every interval until stopped."""

    name = "cj_monitor"

    async def run_once(self) -> MonitorReport:
        """One pass in one unit of work, then refresh the state gauges (read in another)."""
        async with self._transactions() as uow:
            report = await self._workflow.check_stale_batches(uow)
        if report.detected or report.partial_scored:
            log.info(
                "cj_monitor_pass",
                detected=report.detected,
                recovered=report.recovered,
                failed=report.failed,
                partial_scored=report.partial_scored,
            )
        async with self._transactions() as uow:
            counts, pending = await uow.batches.count_live()
        for state in BatchState:
            metrics.BATCHES_BY_STATE.labels(state=state.value).set(counts.get(state.value, 0))
        metrics.COMPARISONS_PENDING.set(pending)
        return report


class TailHedger(_WorkflowWorker):
    """Runs `CJWorkflow.hedge_stragglers` every interval until stopped.

    A timer, because a batch waiting on stragglers gets no callback that could decide to hedge;
    a periodic pass rather than a delayed check per pair, because it survives restarts and is
    shared by several instances (SKIP LOCKED), and costs one indexed query per interval.
    """

    name = "cj_tail_hedger"

    async def run_once(self) -> HedgeReport:
        """One pass in one unit of work (none at all with hedging off)."""
        if not self._workflow.hedging_enabled:
            return HedgeReport()
        async with self._transactions() as uow:
            return await self._workflow.hedge_stragglers(uow)


class EssaySetJanitor(PeriodicWorker):
    """Deletes essay sets past their retention, `limit` per transaction."""

    name = "cj_essay_set_janitor"

    def __init__(
        self, transactions: Transactions, *, interval_seconds: float, limit: int = 100
    ) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._transactions = transactions
        self._limit = limit

    async def run_pass(self) -> bool:
        """Delete one chunk of expired sets; True when a full chunk went (more may wait)."""
        deleted = await self.run_once()
        return deleted >= self._limit

    async def run_once(self) -> int:
        """One chunk in one unit of work; how many sets were deleted."""
        async with self._transactions() as uow:
            deleted = await delete_expired_essay_sets(uow.essay_sets, limit=self._limit)
            if deleted:
                uow.after_commit(lambda: _count_expired(deleted))
        return deleted


def _count_expired(deleted: int) -> None:
    metrics.ESSAY_SETS_EXPIRED.inc(deleted)
    log.info("cj_essay_sets_expired", deleted=deleted)


class EssayTextJanitor(PeriodicWorker):
    """Blanks the essay texts of batches finished longer ago than the retention, `limit`
    batches per transaction (locked with SKIP LOCKED: instances share the work)."""

    name = "cj_essay_text_janitor"

    def __init__(
        self,
        transactions: Transactions,
        *,
        retention_seconds: float,
        interval_seconds: float,
        limit: int,
    ) -> None:
        super().__init__(interval_seconds=interval_seconds)
        self._transactions = transactions
        self._retention = timedelta(seconds=retention_seconds)
        self._limit = limit

    async def run_pass(self) -> bool:
        """Purge one chunk; True when a full chunk went (more may wait)."""
        report = await self.run_once()
        return report.batches >= self._limit

    async def run_once(self) -> PurgeReport:
        """One chunk in one unit of work."""
        now = datetime.now(UTC)
        async with self._transactions() as uow:
            report = await purge_expired_texts(
                uow.lifecycle, finished_before=now - self._retention, limit=self._limit, at=now
            )
            uow.after_commit(lambda: count_purged(report))
        return report
