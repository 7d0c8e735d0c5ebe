"""The PostgreSQL unit of work: one transaction, with the stores of each area
(`postgres_<area>.py`) over its session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime.unit_of_work import SessionUnitOfWork
from llm_provider_service.adapters.postgres_batches import PostgresBatches


class PostgresUnitOfWork(SessionUnitOfWork):
    """The application's `UnitOfWork` over one AsyncSession (one transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.batches = PostgresBatches(session)
