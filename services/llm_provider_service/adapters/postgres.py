"""The PostgreSQL unit of work: one transaction, composing the stores of each area
(`postgres_<area>.py`) over its session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.runtime.unit_of_work import SessionUnitOfWork
from llm_provider_service.adapters.postgres_batches import PostgresBatches


class PostgresUnitOfWork(SessionUnitOfWork):
    """The BatchStore over one AsyncSession (one transaction)."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.batches = PostgresBatches(session)
        self.add_request = self.batches.add_request
        self.open_batch = self.batches.open_batch
        self.requests_of = self.batches.requests_of
        self.record_submission = self.batches.record_submission
        self.claim_unrecorded = self.batches.claim_unrecorded
        self.known_provider_batches = self.batches.known_provider_batches
        self.claim_due = self.batches.claim_due
        self.schedule_poll = self.batches.schedule_poll
        self.end_batch = self.batches.end_batch
        self.finish_request = self.batches.finish_request
        self.purge_finished = self.batches.purge_finished
        self.stage_callback = self.batches.stage_callback


class PostgresTransactions:
    """Opens units of work on the service's database (the application's `Transactions`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[PostgresUnitOfWork]:
        """A session and its unit of work, committed when the block ends normally."""
        async with self._sessions() as session, PostgresUnitOfWork(session) as uow:
            yield uow
