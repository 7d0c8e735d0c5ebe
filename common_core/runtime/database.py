"""Async SQLAlchemy engine and session set-up, and creating a service's database if missing.

Engines hide statement parameters (no row value reaches an exception's text) and treat every
sign of a lost connection as a disconnect. SQLAlchemy's asyncpg dialect only counts a closed
socket as one; after a PostgreSQL restart a pooled connection can also fail with the server's
shutdown message or an asyncpg protocol state error ("cannot switch to state 15; another
operation (2) is in progress", left by a query interrupted by the restart or by a cancelled
request). Counted as disconnects, they invalidate the connection and the pool's other
connections of the same age, so the next checkout connects afresh instead of reusing them.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from common_core.runtime.failures import is_transient

# SQLAlchemy's code for "Can't reconnect until invalid transaction is rolled back": the
# transaction's connection was lost (invalidated) and the session was used again.
_INVALIDATED_TRANSACTION = "8s2b"
# asyncpg errors meaning the connection itself is unusable: lost, refused, or the server going
# down (57P01 admin shutdown, 57P02 crash shutdown, 57P03 starting up).
_CONNECTION_LOST = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    ConnectionError,
)


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An asyncpg-backed engine with pre-ping, sized for one service instance."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        echo=echo,
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "handle_error", _count_lost_connections_as_disconnects)
    return engine


def _count_lost_connections_as_disconnects(context: ExceptionContext) -> None:
    if not context.is_disconnect and is_connection_lost(context.original_exception):
        context.is_disconnect = True


def is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` (or its cause) says the connection to PostgreSQL is lost or unusable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _CONNECTION_LOST) or _is_busy_or_closed(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_busy_or_closed(exc: BaseException) -> bool:
    # asyncpg's bare InterfaceError: "connection is closed", "another operation is in progress";
    # its subclasses (DataError, configuration errors) are about the call, not the connection.
    return type(exc) is asyncpg.exceptions.InterfaceError


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether a failure means the database cannot serve right now (down, restarting, lost).

    A retry later can succeed: an HTTP API answers 503 with Retry-After, not 500. Covers the
    transient failures of `failures.is_transient`, a transaction whose connection was lost
    (`PendingRollbackError` 8s2b) and groups (dishka's cleanup errors) made only of such.
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(is_database_unavailable(inner) for inner in exc.exceptions)
    if isinstance(exc, sa_exc.PendingRollbackError):
        return exc.code == _INVALIDATED_TRANSACTION
    return is_transient(exc)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq DSN asyncpg accepts for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(url: str) -> None:
    """Create the URL's database on its server if it does not exist (safe when racing)."""
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError("database URL names no database")
    admin = await asyncpg.connect(
        asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    )
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                quoted = '"' + name.replace('"', '""') + '"'
                await admin.execute(f"CREATE DATABASE {quoted}")
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await admin.close()
