"""The monitor's use cases: partial scoring after the grace, recovering or failing stuck batches,
and cancelling a batch."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.outcomes import BatchOutcomes
from cj_assessment_service.application.ports import BatchRecord, UnitOfWork
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState, recovery_decision, success_rate
from cj_assessment_service.domain.errors import BatchAlreadyFinished, BatchNotFound
from common_core.errors import ErrorCode
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import LLMMode


@dataclass
class MonitorReport:
    """What one monitor pass did."""

    detected: int = 0
    recovered: int = 0
    failed: int = 0
    partial_scored: int = 0
    human_pairs_released: int = 0


class MonitorUseCases:
    """Stale and cancelled batches, in the caller's transaction."""

    def __init__(self, settings: Settings, outcomes: BatchOutcomes) -> None:
        self._settings = settings
        self._outcomes = outcomes

    async def check_stale_batches(self, uow: UnitOfWork) -> MonitorReport:
        """One monitor pass: partial scoring after the grace; recover or fail stuck batches."""
        report = MonitorReport()
        now = datetime.now(UTC)
        settings = self._settings
        stale = await uow.batches.lock_stale(
            inactive_since=_ago(now, settings.stuck_batch_timeout_seconds),
            batch_mode_inactive_since=_ago(now, settings.stuck_batch_mode_timeout_seconds),
            threshold_since=_ago(now, settings.partial_scoring_grace_seconds),
            limit=settings.monitor_batch_limit,
        )
        for batch in stale:
            with structlog.contextvars.bound_contextvars(batch_id=str(batch.id)):
                await self._handle_stale(uow, batch, now, report)

        def record() -> None:
            metrics.STUCK_BATCHES_DETECTED.inc(report.detected)
            metrics.STUCK_BATCHES_RECOVERED.inc(report.recovered)
            metrics.STUCK_BATCHES_FAILED.inc(report.failed)
            metrics.PARTIAL_SCORING_TRIGGERED.inc(report.partial_scored)

        uow.after_commit(record)
        return report

    def _stuck_after(self, batch: BatchRecord) -> float:
        """Seconds without activity after which the batch counts as stuck: a provider batch
        answers within its completion window, all at once, so batch mode waits longer."""
        if batch.request_settings.llm_config.mode == LLMMode.BATCH:
            return self._settings.stuck_batch_mode_timeout_seconds
        return self._settings.stuck_batch_timeout_seconds

    async def _handle_stale(
        self, uow: UnitOfWork, batch: BatchRecord, now: datetime, report: MonitorReport
    ) -> None:
        settings = self._settings
        grace_over = batch.threshold_reached_at is not None and (
            (now - batch.threshold_reached_at).total_seconds()
            >= settings.partial_scoring_grace_seconds
        )
        if batch.state == BatchState.WAITING_CALLBACKS and grace_over:
            if success_rate(batch.completed, batch.failed) < settings.min_success_rate_threshold:
                await self._outcomes.fail_low_success(uow, batch)
                return
            report.partial_scored += 1
            # Not BUDGET_EXHAUSTED: answers are missing. A new reason value would break v1
            # consumers that validate the closed set, so the reason is the existing
            # FORCED_RECOVERY (the monitor finished the batch) and the event's optional
            # `partial_scoring_triggered` says it was partial scoring.
            await self._outcomes.finish(
                uow,
                replace(batch, partial_scoring_triggered=True),
                CJCompletionReason.FORCED_RECOVERY,
                partial=True,
            )
            return
        if (now - batch.last_activity_at).total_seconds() < self._stuck_after(batch):
            return
        report.detected += 1
        recoverable = batch.completed > 0 and (
            batch.state == BatchState.SCORING
            or recovery_decision(
                answered=batch.answered,
                planned=batch.budget,
                recovery_threshold_pct=settings.recovery_threshold_pct,
            )
        )
        if recoverable and success_rate(batch.completed, batch.failed) >= (
            settings.min_success_rate_threshold
        ):
            report.recovered += 1
            await self._outcomes.finish(uow, batch, CJCompletionReason.FORCED_RECOVERY)
            return
        report.failed += 1
        await self._outcomes.fail(
            uow,
            batch,
            ErrorCode.STUCK_BATCH,
            f"no activity for {settings.stuck_batch_timeout_seconds:g}s with "
            f"{batch.answered}/{batch.budget} comparisons answered",
            operation="monitor",
            details={"state": batch.state.value, "answered": batch.answered},
        )

    async def cancel(self, uow: UnitOfWork, batch_id: UUID) -> BatchRecord:
        """Cancel a live batch (one failed event with code `cancelled`)."""
        batch = await uow.batches.lock(batch_id)
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        if batch.state.is_terminal:
            raise BatchAlreadyFinished(f"batch {batch_id} is already {batch.state.value}")
        await self._outcomes.fail(
            uow,
            batch,
            ErrorCode.CANCELLED,
            "batch cancelled by an operator",
            operation="cancel",
            state=BatchState.CANCELLED,
        )
        cancelled = await uow.batches.get(batch_id)
        assert cancelled is not None
        return cancelled


def _ago(now: datetime, seconds: float) -> datetime:
    return now - timedelta(seconds=seconds)
