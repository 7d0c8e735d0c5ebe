"""Batch-mode state in PostgreSQL: queued requests, provider batches, and their callbacks'
outbox rows, all in the unit of work's transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Row, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from llm_provider_service.adapters.tables import batch_items, provider_batches
from llm_provider_service.application.ports import ProviderBatchRecord, QueuedRequest

PENDING, QUEUED, DONE = "pending", "queued", "done"
SUBMITTING, SUBMITTED, ENDED = "submitting", "submitted", "ended"


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class PostgresBatches:
    """The BatchStore over one session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_request(self, request: QueuedRequest) -> bool:
        """Insert the request unless its id is known."""
        result = await self._session.execute(
            insert(batch_items)
            .values(
                request_id=request.request_id,
                kind=request.kind,
                provider=request.provider,
                model=request.model,
                envelope=request.envelope,
                message_key=request.message_key,
                state=PENDING,
            )
            .on_conflict_do_nothing(index_elements=[batch_items.c.request_id])
            .returning(batch_items.c.request_id)
        )
        return result.first() is not None

    async def open_batch(
        self,
        *,
        window_seconds: float,
        max_size: int,
        lease_seconds: float,
        poll_seconds: float,
        one_at_a_time: Collection[str] = (),
    ) -> ProviderBatchRecord | None:
        """Lock a due group's pending requests (skipping those another instance holds) and
        put them into a new `submitting` batch; for a provider in `one_at_a_time`, only when
        this transaction holds the provider's submission lock and no batch of it is
        `submitting` (an instance that finds the lock taken skips the provider this pass)."""
        now = func.now()
        groups = (
            await self._session.execute(
                select(
                    batch_items.c.provider,
                    batch_items.c.model,
                    func.min(batch_items.c.created_at).label("oldest"),
                    func.count().label("waiting"),
                )
                .where(batch_items.c.state == PENDING)
                .group_by(batch_items.c.provider, batch_items.c.model)
                .having(
                    (func.min(batch_items.c.created_at) <= now - _seconds(window_seconds))
                    | (func.count() >= max_size)
                )
                .order_by("oldest")
            )
        ).all()
        for group in groups:
            if group.provider in one_at_a_time and not await self._sole_submitter(group.provider):
                continue
            locked = (
                await self._session.execute(
                    select(
                        batch_items.c.request_id,
                        batch_items.c.created_at <= now - _seconds(window_seconds),
                    )
                    .where(
                        and_(
                            batch_items.c.state == PENDING,
                            batch_items.c.provider == group.provider,
                            batch_items.c.model == group.model,
                        )
                    )
                    .order_by(batch_items.c.created_at, batch_items.c.request_id)
                    .limit(max_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            # What another instance left over may be neither a full chunk nor old enough yet.
            if not locked or (len(locked) < max_size and not locked[0][1]):
                continue
            ids = [row[0] for row in locked]
            batch_id = uuid4()
            row = (
                await self._session.execute(
                    insert(provider_batches)
                    .values(
                        id=batch_id,
                        provider=group.provider,
                        model=group.model,
                        state=SUBMITTING,
                        item_count=len(ids),
                        lease_until=now + _seconds(lease_seconds),
                        poll_interval_seconds=poll_seconds,
                    )
                    .returning(*provider_batches.c)
                )
            ).one()
            await self._session.execute(
                update(batch_items)
                .where(batch_items.c.request_id.in_(ids))
                .values(state=QUEUED, batch_id=batch_id)
            )
            return _batch(row)
        return None

    async def _sole_submitter(self, provider: str) -> bool:
        """Take the provider's submission lock (held to the end of the transaction) and check
        that none of its batches is `submitting`."""
        locked = await self._session.scalar(
            select(func.pg_try_advisory_xact_lock(func.hashtext(f"llm-batch-submit:{provider}")))
        )
        if not locked:
            return False
        submitting = await self._session.scalar(
            select(func.count())
            .select_from(provider_batches)
            .where(
                and_(
                    provider_batches.c.provider == provider, provider_batches.c.state == SUBMITTING
                )
            )
        )
        return not submitting

    async def requests_of(self, batch_id: UUID) -> list[QueuedRequest]:
        """The batch's requests not yet answered, oldest first."""
        rows = (
            await self._session.execute(
                select(batch_items)
                .where(and_(batch_items.c.batch_id == batch_id, batch_items.c.state == QUEUED))
                .order_by(batch_items.c.created_at, batch_items.c.request_id)
            )
        ).all()
        return [
            QueuedRequest(
                request_id=row.request_id,
                kind=row.kind,
                provider=row.provider,
                model=row.model,
                envelope=row.envelope,
                message_key=row.message_key,
                queued_at=row.created_at,
            )
            for row in rows
        ]

    async def record_submission(
        self, batch_id: UUID, provider_batch_id: str, *, poll_seconds: float
    ) -> bool:
        """`submitting` -> `submitted`, first status check after `poll_seconds`."""
        result = await self._session.execute(
            update(provider_batches)
            .where(and_(provider_batches.c.id == batch_id, provider_batches.c.state == SUBMITTING))
            .values(
                state=SUBMITTED,
                provider_batch_id=provider_batch_id,
                submitted_at=func.now(),
                lease_until=None,
                next_poll_at=func.now() + _seconds(poll_seconds),
                poll_interval_seconds=poll_seconds,
            )
            .returning(provider_batches.c.id)
        )
        return result.first() is not None

    async def claim_unrecorded(self, *, lease_seconds: float) -> ProviderBatchRecord | None:
        """Renew the lease of one `submitting` batch whose lease ran out, and return it."""
        stale = (
            select(provider_batches.c.id)
            .where(
                and_(
                    provider_batches.c.state == SUBMITTING,
                    provider_batches.c.lease_until < func.now(),
                )
            )
            .order_by(provider_batches.c.lease_until)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = (
            await self._session.execute(
                update(provider_batches)
                .where(provider_batches.c.id == stale)
                .values(lease_until=func.now() + _seconds(lease_seconds))
                .returning(*provider_batches.c)
            )
        ).first()
        return _batch(row) if row is not None else None

    async def known_provider_batches(self, provider: str) -> set[str]:
        """Provider batch ids recorded for the provider."""
        ids = await self._session.execute(
            select(provider_batches.c.provider_batch_id).where(
                and_(
                    provider_batches.c.provider == provider,
                    provider_batches.c.provider_batch_id.is_not(None),
                )
            )
        )
        return {str(value) for value in ids.scalars()}

    async def claim_due(self, limit: int) -> list[ProviderBatchRecord]:
        """Lock submitted batches whose check is due (others' locked ones skipped)."""
        rows = (
            await self._session.execute(
                select(provider_batches)
                .where(
                    and_(
                        provider_batches.c.state == SUBMITTED,
                        provider_batches.c.next_poll_at <= func.now(),
                    )
                )
                .order_by(provider_batches.c.next_poll_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        return [_batch(row) for row in rows]

    async def schedule_poll(self, batch_id: UUID, interval_seconds: float) -> None:
        """Next check after `interval_seconds`."""
        await self._session.execute(
            update(provider_batches)
            .where(provider_batches.c.id == batch_id)
            .values(
                next_poll_at=func.now() + _seconds(interval_seconds),
                poll_interval_seconds=interval_seconds,
            )
        )

    async def end_batch(self, batch_id: UUID, outcome: str) -> None:
        """Mark the batch ended."""
        await self._session.execute(
            update(provider_batches)
            .where(provider_batches.c.id == batch_id)
            .values(
                state=ENDED,
                outcome=outcome,
                ended_at=func.now(),
                next_poll_at=None,
                lease_until=None,
            )
        )

    async def finish_request(self, request_id: UUID) -> None:
        """Mark the request answered; its text is not kept (the row stays, for de-duplication)."""
        await self._session.execute(
            update(batch_items)
            .where(batch_items.c.request_id == request_id)
            .values(state=DONE, finished_at=func.now(), envelope="")
        )

    async def drop_waiting(self, message_key: str) -> tuple[int, int]:
        """Delete the key's `pending` requests (one a submitter is moving into a provider batch
        is waited for and then left: it is `queued` by then); (deleted, still queued)."""
        deleted = await self._session.execute(
            delete(batch_items)
            .where(and_(batch_items.c.message_key == message_key, batch_items.c.state == PENDING))
            .returning(batch_items.c.request_id)
        )
        queued = await self._session.scalar(
            select(func.count()).where(
                and_(batch_items.c.message_key == message_key, batch_items.c.state == QUEUED)
            )
        )
        return len(deleted.all()), int(queued or 0)

    async def purge_finished(self, older_than_seconds: float, limit: int = 1000) -> int:
        """Forget up to `limit` answered requests finished longer ago than given (skipping rows
        another instance is purging), and the ended batches left without requests."""
        cutoff = func.now() - _seconds(older_than_seconds)
        expired = (
            select(batch_items.c.request_id)
            .where(and_(batch_items.c.state == DONE, batch_items.c.finished_at < cutoff))
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        items = await self._session.execute(
            delete(batch_items)
            .where(batch_items.c.request_id.in_(expired))
            .returning(batch_items.c.request_id)
        )
        purged = len(items.all())
        await self._session.execute(
            delete(provider_batches).where(
                and_(
                    provider_batches.c.state == ENDED,
                    provider_batches.c.ended_at < cutoff,
                    ~select(batch_items.c.request_id)
                    .where(batch_items.c.batch_id == provider_batches.c.id)
                    .exists(),
                )
            )
        )
        return purged


def _batch(row: Row[Any]) -> ProviderBatchRecord:
    return ProviderBatchRecord(
        id=row.id,
        provider=row.provider,
        model=row.model,
        provider_batch_id=row.provider_batch_id,
        item_count=row.item_count,
        poll_interval_seconds=row.poll_interval_seconds,
        created_at=row.created_at,
    )
