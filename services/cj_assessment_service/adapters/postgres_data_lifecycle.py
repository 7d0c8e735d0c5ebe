"""PostgreSQL side of the essay texts' end (`TextLifecycleStore`): blanking the texts of finished
batches, deleting the outbox rows that carry copies, and the erasure audit records."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, cast, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.tables import cj_batches, cj_erasures, cj_essays
from cj_assessment_service.application.ports import ErasureRecord
from common_core.runtime.outbox import event_outbox


class PostgresTextLifecycle:
    """The TextLifecycleStore over one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_purgeable(self, finished_before: datetime, limit: int) -> list[UUID]:
        """Finished batches still holding their texts, oldest first, locked with SKIP LOCKED
        (`ix_cj_batches_texts_held`)."""
        rows = await self._session.execute(
            select(cj_batches.c.id)
            .where(
                and_(
                    cj_batches.c.texts_purged_at.is_(None),
                    cj_batches.c.finished_at.is_not(None),
                    cj_batches.c.finished_at < finished_before,
                )
            )
            .order_by(cj_batches.c.finished_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows.scalars())

    async def blank_texts(self, batch_ids: Sequence[UUID], at: datetime) -> int:
        """Blank the essay texts (ids, positions and anchor grades stay for the scores) and mark
        the batches purged; how many texts were still there."""
        if not batch_ids:
            return 0
        blanked = await self._session.execute(
            update(cj_essays)
            .where(and_(cj_essays.c.batch_id.in_(batch_ids), cj_essays.c.text_content != ""))
            .values(text_content="")
            .returning(cj_essays.c.position),
            execution_options={"synchronize_session": False},
        )
        count = len(blanked.all())
        await self._session.execute(
            update(cj_batches)
            .where(cj_batches.c.id.in_(batch_ids))
            .values(texts_purged_at=func.coalesce(cj_batches.c.texts_purged_at, at)),
            execution_options={"synchronize_session": False},
        )
        return count

    async def delete_outbox_rows(self, topic: str, batch_id: UUID) -> int:
        """Delete the batch's rows of `topic`, published or not; a row a relay is publishing now
        is deleted once that relay's transaction ends.

        A comparison request names its batch in `request_metadata.batch_id`; it is keyed by its
        own request id (by the batch id before requests were spread over the LLM instances), so
        the key finds only older rows. Re-issued and hedged requests carry request ids no pair
        row keeps, which is why the payload is read: a text match on the id picks the few
        candidate rows, and the JSON path confirms each."""
        batch = str(batch_id)
        named = cast(event_outbox.c.payload, JSONB)[("data", "request_metadata", "batch_id")]
        result = await self._session.execute(
            delete(event_outbox)
            .where(
                and_(
                    event_outbox.c.topic == topic,
                    or_(
                        event_outbox.c.message_key == batch,
                        and_(
                            event_outbox.c.payload.contains(batch, autoescape=True),
                            named.astext == batch,
                        ),
                    ),
                )
            )
            .returning(event_outbox.c.id)
        )
        return len(result.all())

    async def erased_before(self, batch_id: UUID) -> bool:
        """True when an erasure of the batch has been recorded."""
        found = await self._session.scalar(
            select(cj_erasures.c.id).where(cj_erasures.c.batch_id == batch_id).limit(1)
        )
        return found is not None

    async def record_erasure(self, record: ErasureRecord) -> None:
        """Store an erasure's audit record."""
        await self._session.execute(
            insert(cj_erasures).values(
                id=record.id,
                batch_id=record.batch_id,
                requested_at=record.requested_at,
                requested_by=record.requested_by,
                batch_state=record.batch_state.value,
                erased=dict(record.erased),
            )
        )
