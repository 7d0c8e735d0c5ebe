"""PostgreSQL side of the human judges' page and organiser API (`HumanJudgingStore`): a judge's
pairs of a batch (`ix_cj_pairs_human_judge`), their submit and skip times, and a batch's human
judging."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.tables import cj_batches, cj_pairs
from cj_assessment_service.application.ports import HumanPairRecord, JudgeProgress
from cj_assessment_service.domain.batch import PairStatus
from common_core.events.cj import HumanJudgingRequest
from common_core.events.llm import JudgeKind

_HUMAN = cj_pairs.c.judge_kind == JudgeKind.HUMAN.value
_COLUMNS = (
    cj_pairs.c.id,
    cj_pairs.c.batch_id,
    cj_pairs.c.judge_id,
    cj_pairs.c.essay_a,
    cj_pairs.c.essay_b,
    cj_pairs.c.request_id,
    cj_pairs.c.status,
    cj_pairs.c.requested_at,
    cj_pairs.c.submitted_at,
    cj_pairs.c.skipped_at,
)
_OPEN = and_(cj_pairs.c.status == PairStatus.PENDING.value, cj_pairs.c.submitted_at.is_(None))
_JUDGED = cj_pairs.c.submitted_at.is_not(None) | cj_pairs.c.status.in_(
    [PairStatus.COMPLETED.value, PairStatus.FAILED.value]
)


def _human_pair(row: RowMapping) -> HumanPairRecord:
    values = dict(row)
    values["status"] = PairStatus(values["status"])
    return HumanPairRecord(**values)


def _count(condition: Any) -> Any:
    return func.count().filter(condition)


class PostgresHumanJudging:
    """The HumanJudgingStore over one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_pair(self, pair_id: UUID) -> HumanPairRecord | None:
        """A human pair, locked (SELECT ... FOR UPDATE)."""
        row = (
            await self._session.execute(
                select(*_COLUMNS).where(cj_pairs.c.id == pair_id, _HUMAN).with_for_update()
            )
        ).one_or_none()
        return _human_pair(row._mapping) if row is not None else None

    async def next_pair(self, batch_id: UUID, judge_id: str) -> HumanPairRecord | None:
        """The judge's next open pair: never skipped first, in planning order; then skipped."""
        row = (
            await self._session.execute(
                select(*_COLUMNS)
                .where(
                    cj_pairs.c.batch_id == batch_id,
                    cj_pairs.c.judge_id == judge_id,
                    _HUMAN,
                    _OPEN,
                )
                .order_by(
                    cj_pairs.c.skipped_at.asc().nulls_first(),
                    cj_pairs.c.wave,
                    cj_pairs.c.requested_at,
                    cj_pairs.c.id,
                )
                .limit(1)
            )
        ).one_or_none()
        return _human_pair(row._mapping) if row is not None else None

    async def progress(self, batch_id: UUID) -> dict[str, JudgeProgress]:
        """Every human judge's counts on a batch, in one aggregate."""
        released = cj_pairs.c.status == PairStatus.RELEASED.value
        rows = (
            await self._session.execute(
                select(
                    cj_pairs.c.judge_id,
                    func.count().label("assigned"),
                    _count(_JUDGED).label("judged"),
                    _count(and_(_OPEN, cj_pairs.c.skipped_at.is_not(None))).label("skipped"),
                    _count(_OPEN).label("remaining"),
                    _count(released).label("released"),
                )
                .where(cj_pairs.c.batch_id == batch_id, _HUMAN)
                .group_by(cj_pairs.c.judge_id)
            )
        ).all()
        return {
            row.judge_id: JudgeProgress(
                row.judge_id, row.assigned, row.judged, row.skipped, row.remaining, row.released
            )
            for row in rows
        }

    async def mark_submitted(self, pair_id: UUID, at: datetime) -> None:
        """Record the staged verdict's time."""
        await self._session.execute(
            update(cj_pairs).where(cj_pairs.c.id == pair_id).values(submitted_at=at)
        )

    async def mark_skipped(self, pair_id: UUID, at: datetime) -> None:
        """Record the skip's time (a later skip moves the pair to the end again)."""
        await self._session.execute(
            update(cj_pairs).where(cj_pairs.c.id == pair_id).values(skipped_at=at)
        )

    async def start(self, batch_id: UUID, request: HumanJudgingRequest) -> None:
        """Store the batch's human judging and deadline."""
        await self._session.execute(
            update(cj_batches)
            .where(cj_batches.c.id == batch_id)
            .values(
                human_judging=request.model_dump(mode="json"),
                human_deadline=request.deadline,
                updated_at=func.now(),
            )
        )
