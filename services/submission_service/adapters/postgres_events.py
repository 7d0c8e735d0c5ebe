"""The outbox (events staged in the transaction) and the inbox (consumed events claimed once)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from common_core.events.envelope import new_event
from common_core.runtime import inbox
from common_core.runtime.outbox import add_to_outbox
from common_core.topics import Topic, topic_name

SOURCE_SERVICE = "submission_service"


class PostgresEvents:
    """The outbox and the inbox: events staged and claimed in the transaction."""

    def __init__(self, session: AsyncSession, *, topic_prefix: str) -> None:
        self._session = session
        self._topic_prefix = topic_prefix

    async def stage_event(
        self, topic: Topic, payload: BaseModel, *, key: str, correlation_id: UUID
    ) -> UUID:
        """Stage an event in the outbox, in this transaction."""
        name = topic_name(topic, self._topic_prefix)
        envelope = new_event(
            name, payload, source_service=SOURCE_SERVICE, correlation_id=correlation_id
        )
        await add_to_outbox(self._session, topic=name, envelope=envelope, key=key)
        return envelope.event_id

    async def claim_event(self, consumer: str, event_id: UUID) -> bool:
        """De-duplicate a consumed event on its event_id."""
        return await inbox.claim_event(self._session, consumer=consumer, event_id=event_id)
