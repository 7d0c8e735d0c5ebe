"""An in-memory `BatchRepository` for unit tests of the use cases."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    HedgeCall,
    NewHedge,
    NewPair,
    PairAnswer,
    PairOutcomes,
    PairRecord,
    PairReissue,
    StoredEssaySet,
    Verdict,
)
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.domain.scoring import ScoredEssay
from common_core.events.cj import EssayRanking
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMMode


class FakeBatchRepository:
    """Keeps everything in dicts; `committed()` runs the after-commit actions like the real one."""

    def __init__(self) -> None:
        self.batches: dict[UUID, BatchRecord] = {}
        self.essay_rows: dict[UUID, list[EssayRecord]] = {}
        self.pairs: dict[UUID, PairRecord] = {}
        self.scores: dict[UUID, list[EssayRanking]] = {}
        self.outbox: list[tuple[str, EventEnvelope[Any], str]] = []
        self.claimed: set[UUID] = set()
        self.essay_sets: dict[UUID, StoredEssaySet] = {}
        self.hedges: dict[UUID, HedgeCall] = {}  # by request id
        self.answered_at: dict[UUID, datetime] = {}
        self._after: list[Callable[[], None]] = []

    async def claim_request(self, event_id: UUID) -> bool:
        if event_id in self.claimed:
            return False
        self.claimed.add(event_id)
        return True

    async def live_batch_id(self, entity_ref: str) -> UUID | None:
        for batch in self.batches.values():
            if batch.entity_ref == entity_ref and not batch.state.is_terminal:
                return batch.id
        return None

    async def add_batch(self, batch: BatchRecord, essays: Sequence[EssayRecord]) -> None:
        self.batches[batch.id] = batch
        self.essay_rows[batch.id] = list(essays)

    async def add_pairs(self, batch_id: UUID, wave: int, pairs: Sequence[NewPair]) -> None:
        for p in pairs:
            self.pairs[p.id] = PairRecord(
                p.id,
                batch_id,
                wave,
                p.essay_a,
                p.essay_b,
                p.request_id,
                PairStatus.PENDING,
                None,
                1,
                datetime.now(UTC),
            )

    async def update_batch(self, batch_id: UUID, **changes: Any) -> None:
        self.batches[batch_id] = replace(self.batches[batch_id], **changes)

    async def get_batch(self, batch_id: UUID) -> BatchRecord | None:
        return self.batches.get(batch_id)

    async def newest_batch(self, entity_ref: str) -> BatchRecord | None:
        found = [b for b in self.batches.values() if b.entity_ref == entity_ref]
        return max(found, key=lambda b: b.created_at) if found else None

    async def lock_batch(self, batch_id: UUID) -> BatchRecord | None:
        return self.batches.get(batch_id)

    async def lock_batches_for_requests(
        self, request_ids: Sequence[UUID]
    ) -> dict[UUID, BatchRecord]:
        wanted = set(request_ids)
        owners = {p.batch_id for p in self.pairs.values() if p.request_id in wanted}
        owners |= {
            self.pairs[h.pair_id].batch_id for h in self.hedges.values() if h.request_id in wanted
        }
        return {i: self.batches[i] for i in sorted(owners) if i in self.batches}

    async def lock_stale_batches(
        self,
        *,
        inactive_since: datetime,
        batch_mode_inactive_since: datetime,
        threshold_since: datetime,
        limit: int,
    ) -> list[BatchRecord]:
        return [
            b
            for b in self.batches.values()
            if not b.state.is_terminal
            and (
                b.last_activity_at
                < (
                    batch_mode_inactive_since
                    if b.request_settings.llm_config.mode == LLMMode.BATCH
                    else inactive_since
                )
                or (
                    b.threshold_reached_at is not None and b.threshold_reached_at <= threshold_since
                )
            )
        ][:limit]

    async def pairs_by_request(self, request_ids: Sequence[UUID]) -> dict[UUID, PairRecord]:
        wanted = set(request_ids)
        found = {p.request_id: p for p in self.pairs.values() if p.request_id in wanted}
        for h in self.hedges.values():
            if h.request_id in wanted:
                found.setdefault(h.request_id, self.pairs[h.pair_id])
        return found

    async def lock_hedge_candidates(self, *, max_share: float, limit: int) -> list[BatchRecord]:
        return [
            b
            for b in self.batches.values()
            if b.state == BatchState.WAITING_CALLBACKS
            and b.planned >= b.budget
            and b.pending > 0
            and b.hedged < int(b.budget * max_share + 1e-9)
            and b.request_settings.llm_config.mode != LLMMode.BATCH
        ][:limit]

    async def outstanding_pairs(
        self, batch_id: UUID
    ) -> tuple[list[PairRecord], set[UUID], float | None]:
        pairs = [p for p in self.pairs.values() if p.batch_id == batch_id]
        times = [
            (self.answered_at[p.id] - p.requested_at).total_seconds()
            for p in pairs
            if p.status == PairStatus.COMPLETED and p.id in self.answered_at
        ]
        hedged = {h.pair_id for h in self.hedges.values() if self.pairs[h.pair_id] in pairs}
        median = statistics.median(times) if times else None
        return [p for p in pairs if p.status == PairStatus.PENDING], hedged, median

    async def add_hedges(self, batch_id: UUID, hedges: Sequence[NewHedge], at: datetime) -> None:
        for h in hedges:
            for request_id, hedge in (
                (h.outstanding_request_id, False),
                (h.hedge_request_id, True),
            ):
                self.hedges[request_id] = HedgeCall(request_id, h.pair_id, hedge, False)

    async def hedge_calls(self, request_ids: Sequence[UUID]) -> dict[UUID, list[HedgeCall]]:
        pair_ids = {self.hedges[r].pair_id for r in request_ids if r in self.hedges}
        calls: dict[UUID, list[HedgeCall]] = {}
        for h in self.hedges.values():
            if h.pair_id in pair_ids:
                calls.setdefault(h.pair_id, []).append(h)
        return calls

    async def mark_hedge_calls_answered(self, request_ids: Sequence[UUID], at: datetime) -> None:
        for r in request_ids:
            self.hedges[r] = replace(self.hedges[r], answered=True)

    async def pair_outcomes(self, batch_id: UUID) -> PairOutcomes:
        return PairOutcomes.from_rows(
            [
                (p.essay_a, p.essay_b, Verdict.of(p.status, p.winner))
                for p in self.pairs.values()
                if p.batch_id == batch_id
            ]
        )

    async def essays(
        self, batch_id: UUID, positions: Collection[int] | None = None
    ) -> list[EssayRecord]:
        rows = self.essay_rows[batch_id]
        if positions is None:
            return list(rows)
        wanted = set(positions)
        return [e for e in rows if e.position in wanted]

    async def essay_set(self, set_id: UUID, now: datetime) -> StoredEssaySet | None:
        found = self.essay_sets.get(set_id)
        return found if found is not None and found.expires_at > now else None

    async def scored_essays(self, batch_id: UUID) -> list[ScoredEssay]:
        return [ScoredEssay(e.essay_id, e.anchor_grade) for e in self.essay_rows[batch_id]]

    async def essay_total(self, batch_id: UUID) -> int:
        return len(self.essay_rows[batch_id])

    async def save_answers(self, answers: Sequence[PairAnswer], answered_at: datetime) -> None:
        for a in answers:
            self.pairs[a.pair_id] = replace(self.pairs[a.pair_id], status=a.status, winner=a.winner)
            self.answered_at[a.pair_id] = answered_at

    async def reissue_pairs(self, reissues: Sequence[PairReissue], requested_at: datetime) -> None:
        for r in reissues:
            pair = self.pairs[r.pair_id]
            self.pairs[r.pair_id] = replace(
                pair, request_id=r.request_id, attempts=pair.attempts + 1, requested_at=requested_at
            )

    async def save_scores(self, batch_id: UUID, rankings: Sequence[EssayRanking]) -> None:
        self.scores[batch_id] = list(rankings)

    async def count_live(self) -> tuple[dict[str, int], int]:
        counts = Counter(b.state.value for b in self.batches.values())
        pending = sum(b.pending for b in self.batches.values() if not b.state.is_terminal)
        return dict(counts), pending

    async def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str) -> None:
        self.outbox.append((topic, envelope, key))

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after.append(action)

    def committed(self) -> None:
        actions, self._after = self._after, []
        for action in actions:
            action()

    def events(self, topic_suffix: str) -> list[EventEnvelope[Any]]:
        """Staged events whose topic ends with a logical name."""
        return [e for t, e, _ in self.outbox if t.endswith(topic_suffix)]
