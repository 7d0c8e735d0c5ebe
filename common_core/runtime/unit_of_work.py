"""The unit of work: one transaction over an AsyncSession, with its outbox and commit hooks.

Every service's `PostgresUnitOfWork` subclasses `SessionUnitOfWork` and hangs one store per area
off it (`uow.batches`, `uow.webhooks`, ...) over `self.session`; `SessionTransactions` is the
factory the entrypoints open units of work with (`async with transactions() as uow:`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.events.envelope import EventEnvelope
from common_core.runtime.outbox import add_rows_to_outbox, outbox_row
from common_core.runtime.tracing import traced


class SessionUnitOfWork:
    """One transaction, as an async context manager: committed when the block ends normally,
    rolled back when it raises.

    Around the commit, in this order:
    - `before_commit` writes run (a store that buffers changes writes them once, here);
    - events staged with `stage_event` go to the outbox with one INSERT (and one NOTIFY);
    - after the commit succeeded, the `after_commit` actions run: metrics and logs that must
      count a transaction once, never a rolled-back or retried one.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        self._staged: list[dict[str, Any]] = []
        self._after_commit: list[Callable[[], None]] = []

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event in this transaction's outbox (written just before the commit)."""
        self._staged.append(outbox_row(topic=topic, envelope=envelope, key=key))

    def before_commit(self, write: Callable[[], Awaitable[None]]) -> None:
        """Run `write` inside the transaction, just before it commits."""
        self._before_commit.append(write)

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed (never if it rolls back)."""
        self._after_commit.append(action)

    async def flush(self) -> None:
        """Run the before-commit writes and write the staged outbox rows, still uncommitted."""
        writes, self._before_commit = self._before_commit, []
        for write in writes:
            await write()
        staged, self._staged = self._staged, []
        await add_rows_to_outbox(self.session, staged)

    async def commit(self) -> None:
        """Flush, commit, then run the after-commit actions."""
        await self.flush()
        await self.session.commit()
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    async def rollback(self) -> None:
        """Roll the transaction back and forget everything queued for its commit."""
        self._before_commit, self._staged, self._after_commit = [], [], []
        await self.session.rollback()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.commit()
        else:
            await self.rollback()


UoW = TypeVar("UoW", bound=SessionUnitOfWork)


class SessionTransactions(Generic[UoW]):
    """Opens units of work on a session factory: each call is one session, one transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], build: Callable[[AsyncSession], UoW]
    ) -> None:
        self._sessions = sessions
        self._build = build

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[UoW]:
        """A unit of work, committed when the block ends normally, rolled back when it raises
        (with tracing on, a `db.transaction` span around it)."""
        with traced("db.transaction", attributes={"db.system.name": "postgresql"}):
            async with self._sessions() as session, self._build(session) as uow:
                yield uow
