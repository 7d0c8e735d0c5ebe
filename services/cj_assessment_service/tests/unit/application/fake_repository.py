"""An in-memory `BatchRepository` for unit tests of the use cases."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    NewPair,
    PairAnswer,
    PairOutcome,
    PairRecord,
    PairReissue,
    StoredEssaySet,
)
from cj_assessment_service.domain.batch import PairStatus
from common_core.events.cj import EssayRanking
from common_core.events.envelope import EventEnvelope


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
        return {i: self.batches[i] for i in sorted(owners) if i in self.batches}

    async def lock_stale_batches(
        self, *, inactive_since: datetime, threshold_since: datetime, limit: int
    ) -> list[BatchRecord]:
        return [
            b
            for b in self.batches.values()
            if not b.state.is_terminal
            and (
                b.last_activity_at < inactive_since
                or (
                    b.threshold_reached_at is not None and b.threshold_reached_at <= threshold_since
                )
            )
        ][:limit]

    async def pairs_by_request(self, request_ids: Sequence[UUID]) -> dict[UUID, PairRecord]:
        wanted = set(request_ids)
        return {p.request_id: p for p in self.pairs.values() if p.request_id in wanted}

    async def pair_outcomes(self, batch_id: UUID) -> list[PairOutcome]:
        return [
            PairOutcome(p.essay_a, p.essay_b, p.status, p.winner)
            for p in self.pairs.values()
            if p.batch_id == batch_id
        ]

    async def essays(self, batch_id: UUID) -> list[EssayRecord]:
        return list(self.essay_rows[batch_id])

    async def essay_set(self, set_id: UUID, now: datetime) -> StoredEssaySet | None:
        found = self.essay_sets.get(set_id)
        return found if found is not None and found.expires_at > now else None

    async def essay_total(self, batch_id: UUID) -> int:
        return len(self.essay_rows[batch_id])

    async def save_answers(self, answers: Sequence[PairAnswer], answered_at: datetime) -> None:
        for a in answers:
            self.pairs[a.pair_id] = replace(self.pairs[a.pair_id], status=a.status, winner=a.winner)

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
