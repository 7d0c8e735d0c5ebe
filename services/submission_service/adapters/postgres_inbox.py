"""The inbox: consumed events claimed once, in the transaction of their effect."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime import inbox


class PostgresInbox:
    """De-duplicates consumed events on their event_id."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def claim(self, consumer: str, event_id: UUID) -> bool:
        """Record an event as processed by `consumer`; False when it already was."""
        return await inbox.claim_event(self._session, consumer=consumer, event_id=event_id)
