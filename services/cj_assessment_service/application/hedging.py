"""Hedged requests for the straggler tail: once a batch has planned its whole budget and waits only
on its last answers, a pair outstanding far longer than the batch's typical answer is asked a
second time (README "Hedged requests"). Run by a periodic worker, because a batch waiting on
stragglers receives no callback that could decide it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.messages import BatchMessages
from cj_assessment_service.application.ports import BatchRecord, NewHedge, UnitOfWork
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.hedging import HedgePolicy, OutstandingPair, choose_hedges

log = structlog.get_logger(__name__)


@dataclass
class HedgeReport:
    """What one hedging pass did."""

    batches: int = 0
    hedged: int = 0


class HedgeUseCases:
    """Asks stragglers again, in the caller's transaction, under each batch's row lock."""

    def __init__(self, settings: Settings, messages: BatchMessages) -> None:
        self._settings = settings
        self._messages = messages
        self.policy = HedgePolicy(
            max_share=settings.hedge_max_share,
            latency_multiple=settings.hedge_latency_multiple,
            min_age_seconds=settings.hedge_min_age_seconds,
        )

    async def hedge_stragglers(self, uow: UnitOfWork) -> HedgeReport:
        """One pass: hedge the stragglers of every batch in its tail that another instance is
        not handling right now (SKIP LOCKED)."""
        report = HedgeReport()
        if not self.policy.enabled:
            return report
        batches = await uow.batches.lock_hedge_candidates(
            max_share=self.policy.max_share, limit=self._settings.monitor_batch_limit
        )
        now = datetime.now(UTC)
        for batch in batches:
            report.batches += 1
            report.hedged += await self._hedge_batch(uow, batch, now)
        if report.hedged:
            count = report.hedged
            uow.after_commit(lambda: metrics.HEDGED_REQUESTS.inc(count))
        return report

    async def _hedge_batch(self, uow: UnitOfWork, batch: BatchRecord, now: datetime) -> int:
        pending, hedged, median = await uow.pairs.outstanding(batch.id)
        by_id = {p.id: p for p in pending}
        chosen = choose_hedges(
            self.policy,
            budget=batch.budget,
            planned=batch.planned,
            hedged=batch.hedged,
            outstanding=[
                OutstandingPair(p.id, (now - p.requested_at).total_seconds(), p.id in hedged)
                for p in pending
            ],
            median_latency=median,
        )
        if not chosen:
            return 0
        hedges = [NewHedge(pair_id, by_id[pair_id].request_id, uuid4()) for pair_id in chosen]
        await uow.hedges.add(batch.id, hedges, now)
        await self._messages.ask_again(
            uow, batch, [(by_id[h.pair_id], h.hedge_request_id) for h in hedges]
        )
        await uow.batches.set_hedged(batch.id, batch.hedged + len(hedges))
        log.info(
            "cj_stragglers_hedged",
            batch_id=str(batch.id),
            hedged=len(hedges),
            outstanding=len(pending),
            median_latency_seconds=median,
            threshold_seconds=self.policy.threshold_seconds(median or 0.0),
        )
        return len(hedges)
