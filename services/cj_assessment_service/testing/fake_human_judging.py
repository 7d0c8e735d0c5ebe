"""An in-memory `HumanJudgingStore` (the human judges' pairs as their own rows), for the use
cases' unit tests and `FakeUnitOfWork`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol
from uuid import UUID

from cj_assessment_service.application.ports import BatchRecord, HumanPairRecord, JudgeProgress
from cj_assessment_service.domain.batch import PairStatus
from common_core.events.cj import HumanJudgingRequest


class BatchRows(Protocol):
    """The fake batch store's rows (`FakeBatches`)."""

    rows: dict[UUID, BatchRecord]


class FakeHumanJudging:
    """Human pairs by id (in planning order), over the batches of the same unit of work."""

    def __init__(self, batches: BatchRows) -> None:
        self.pairs: dict[UUID, HumanPairRecord] = {}
        self._batches = batches

    def assign(self, pair: HumanPairRecord) -> None:
        """Add a pair assigned to a judge (the planner's part, for tests)."""
        self.pairs[pair.id] = pair

    async def lock_pair(self, pair_id: UUID) -> HumanPairRecord | None:
        return self.pairs.get(pair_id)

    async def next_pair(self, batch_id: UUID, judge_id: str) -> HumanPairRecord | None:
        open_pairs = [
            p
            for p in self.pairs.values()
            if p.batch_id == batch_id and p.judge_id == judge_id and _is_open(p)
        ]
        fresh = [p for p in open_pairs if p.skipped_at is None]
        if fresh:
            return fresh[0]
        skipped = sorted(open_pairs, key=lambda p: p.skipped_at or datetime.min)
        return skipped[0] if skipped else None

    async def progress(self, batch_id: UUID) -> dict[str, JudgeProgress]:
        found: dict[str, JudgeProgress] = {}
        for p in self.pairs.values():
            if p.batch_id != batch_id:
                continue
            now = found.get(p.judge_id, JudgeProgress(p.judge_id))
            found[p.judge_id] = replace(
                now,
                assigned=now.assigned + 1,
                judged=now.judged + p.judged,
                skipped=now.skipped + (_is_open(p) and p.skipped_at is not None),
                remaining=now.remaining + _is_open(p),
                released=now.released + (p.status == PairStatus.RELEASED),
            )
        return found

    async def mark_submitted(self, pair_id: UUID, at: datetime) -> None:
        self.pairs[pair_id] = replace(self.pairs[pair_id], submitted_at=at)

    async def mark_skipped(self, pair_id: UUID, at: datetime) -> None:
        self.pairs[pair_id] = replace(self.pairs[pair_id], skipped_at=at)

    async def start(self, batch_id: UUID, request: HumanJudgingRequest) -> None:
        batch = self._batches.rows[batch_id]
        self._batches.rows[batch_id] = replace(
            batch, human_judging=request, human_deadline=request.deadline
        )


def _is_open(pair: HumanPairRecord) -> bool:
    return pair.status == PairStatus.PENDING and pair.submitted_at is None
