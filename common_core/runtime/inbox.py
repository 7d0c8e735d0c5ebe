"""De-duplication of consumed events: a `processed_events` row per (consumer, event_id)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID as PGUUID
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

inbox_metadata = MetaData()

processed_events = Table(
    "processed_events",
    inbox_metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", PGUUID(as_uuid=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
)


async def claim_event(
    session: AsyncSession | AsyncConnection, *, consumer: str, event_id: UUID
) -> bool:
    """Record the event as processed in the caller's transaction; False if it already was."""
    result = await session.execute(
        insert(processed_events)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    return result.first() is not None
