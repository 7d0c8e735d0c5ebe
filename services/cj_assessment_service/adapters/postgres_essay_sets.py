"""PostgreSQL storage of uploaded essay sets (`EssaySetStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.tables import cj_essay_set_essays, cj_essay_sets
from cj_assessment_service.application.ports import EssayRecord, StoredEssaySet


class PostgresEssaySets:
    """Essay sets through one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, set_id: UUID, created_at: datetime, expires_at: datetime) -> None:
        """Insert an empty set; it is filled by `add_essays` and sealed after."""
        await self._session.execute(
            insert(cj_essay_sets).values(
                id=set_id,
                essay_count=0,
                content_sha256="",
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def add_essays(self, set_id: UUID, essays: Sequence[EssayRecord]) -> None:
        """Append essays (with their upload positions) to a set."""
        if not essays:
            return
        await self._session.execute(
            insert(cj_essay_set_essays),
            [
                {
                    "set_id": set_id,
                    "position": e.position,
                    "essay_id": e.essay_id,
                    "text_content": e.text_content,
                }
                for e in essays
            ],
        )

    async def seal(self, set_id: UUID, essay_count: int, content_sha256: str) -> None:
        """Record the set's essay count and digest once every essay is stored."""
        await self._session.execute(
            update(cj_essay_sets)
            .where(cj_essay_sets.c.id == set_id)
            .values(essay_count=essay_count, content_sha256=content_sha256)
        )

    async def get(self, set_id: UUID, now: datetime) -> StoredEssaySet | None:
        """A sealed, unexpired essay set with its essays in upload order, or None."""
        found = (
            await self._session.execute(
                select(cj_essay_sets.c.content_sha256, cj_essay_sets.c.expires_at).where(
                    cj_essay_sets.c.id == set_id,
                    cj_essay_sets.c.expires_at > now,
                    cj_essay_sets.c.essay_count > 0,
                )
            )
        ).first()
        if found is None:
            return None
        rows = await self._session.execute(
            select(
                cj_essay_set_essays.c.position,
                cj_essay_set_essays.c.essay_id,
                cj_essay_set_essays.c.text_content,
            )
            .where(cj_essay_set_essays.c.set_id == set_id)
            .order_by(cj_essay_set_essays.c.position)
        )
        essays = [EssayRecord(position, essay_id, text) for position, essay_id, text in rows]
        return StoredEssaySet(set_id, found.content_sha256, found.expires_at, essays)

    async def delete_expired(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` sets whose retention ended before `now` (their essays cascade),
        skipping rows another instance is deleting."""
        expired = (
            select(cj_essay_sets.c.id)
            .where(cj_essay_sets.c.expires_at <= now)
            .order_by(cj_essay_sets.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        result = await self._session.execute(
            delete(cj_essay_sets)
            .where(cj_essay_sets.c.id.in_(expired))
            .returning(cj_essay_sets.c.id)
        )
        return len(result.all())

    async def erase(self, set_id: UUID) -> tuple[int, int]:
        """Delete a set with its essays at once, expired or not: (sets, essays) deleted."""
        essays = await self._session.scalar(
            select(func.count()).where(cj_essay_set_essays.c.set_id == set_id)
        )
        result = await self._session.execute(
            delete(cj_essay_sets).where(cj_essay_sets.c.id == set_id).returning(cj_essay_sets.c.id)
        )
        sets = len(result.all())
        return sets, int(essays or 0) if sets else 0
