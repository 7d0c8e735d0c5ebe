"""The unit of work: one transaction over an AsyncSession."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession


class SessionUnitOfWork:
    """One transaction over an AsyncSession, as an async context manager: committed when the
    block ends normally, rolled back when it raises. A service's `PostgresUnitOfWork` subclasses
    it and composes its stores (`postgres_<area>.py`) over `self._session`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def commit(self) -> None:
        """Commit the transaction."""
        await self._session.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        await self._session.rollback()

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
