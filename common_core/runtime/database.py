"""Async SQLAlchemy engine and session set-up, and creating a service's database if missing.

Engines hide statement parameters (no row value reaches an exception's text) and treat every
sign of a lost connection as a disconnect. SQLAlchemy's asyncpg dialect only counts a closed
socket as one; after a PostgreSQL restart a pooled connection can also fail with the server's
shutdown message or an asyncpg protocol state error ("cannot switch to state 15; another
operation (2) is in progress", left by a query interrupted by the restart or by a cancelled
request). Counted as disconnects, they invalidate the connection and the pool's other
connections of the same age, so the next checkout connects afresh instead of reusing them.

Both ways into PostgreSQL (the engine's pool and the raw asyncpg connections for `LISTEN` and
`ensure_database`) take their TLS from one `DatabaseTLS`, which builds the `ssl.SSLContext`
asyncpg gets: the URL's own `sslmode`-style options are not read by both, this is.
"""

from __future__ import annotations

import ssl
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext, make_url
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


SslMode = Literal["prefer", "disable", "require", "verify-ca", "verify-full"]
"""`DATABASE_SSLMODE`: `prefer` is asyncpg's own default (TLS when the server offers it, no
certificate check); `require` insists on TLS without checking the certificate; `verify-ca` checks
it was signed by the trusted CA; `verify-full` also checks that it names the host connected to."""


@dataclass(frozen=True)
class DatabaseTLS:
    """How connections to PostgreSQL use TLS (`DATABASE_SSL*` settings)."""

    mode: SslMode = "prefer"
    root_cert: Path | None = None
    """CA certificates (PEM) that verify the server; the system's trust store when unset."""
    cert: Path | None = None
    """A client certificate (PEM) for servers that ask for one, with its `key`."""
    key: Path | None = None

    def asyncpg_ssl(self) -> ssl.SSLContext | bool | None:
        """The `ssl` argument for `asyncpg.connect`: a context, False (no TLS) or None (asyncpg's
        default, `prefer`)."""
        if self.mode == "prefer":
            return None
        if self.mode == "disable":
            return False
        if self.mode == "require":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            cafile = str(self.root_cert) if self.root_cert else None
            context = ssl.create_default_context(cafile=cafile)
            context.check_hostname = self.mode == "verify-full"
            context.verify_mode = ssl.CERT_REQUIRED
        if self.cert is not None:
            context.load_cert_chain(self.cert, self.key)
        return context

    def connect_args(self) -> dict[str, Any]:
        """Extra `asyncpg.connect` keyword arguments (also the engine's `connect_args`)."""
        tls = self.asyncpg_ssl()
        return {} if tls is None else {"ssl": tls}


PLAIN_TLS = DatabaseTLS()
RawConnect = Callable[[], Awaitable[asyncpg.Connection]]
# The raw-connection recipe of each engine (same URL, credentials and TLS as its pool), for code
# that holds an engine and needs a connection of its own (LISTEN).
_RAW_CONNECT: weakref.WeakKeyDictionary[Engine, RawConnect] = weakref.WeakKeyDictionary()


async def connect_raw(url: str, tls: DatabaseTLS = PLAIN_TLS) -> asyncpg.Connection:
    """A plain asyncpg connection to the SQLAlchemy `url`, with `tls`."""
    return await asyncpg.connect(asyncpg_dsn(url), **tls.connect_args())


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, tls: DatabaseTLS = PLAIN_TLS
) -> AsyncEngine:
    """An asyncpg-backed engine with pre-ping, sized for one service instance."""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        echo=echo,
        hide_parameters=True,
        connect_args=tls.connect_args(),
    )
    event.listen(engine.sync_engine, "handle_error", _count_lost_connections_as_disconnects)
    rendered = engine.url.render_as_string(hide_password=False)
    _RAW_CONNECT[engine.sync_engine] = lambda: connect_raw(rendered, tls)
    return engine


async def connect_like(engine: AsyncEngine) -> asyncpg.Connection:
    """A new asyncpg connection outside the engine's pool, made as the engine makes its own
    (same URL, credentials and TLS)."""
    connect = _RAW_CONNECT.get(engine.sync_engine)
    if connect is None:  # an engine made elsewhere: its URL, asyncpg's default TLS
        return await connect_raw(engine.url.render_as_string(hide_password=False))
    return await connect()


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


def insufficient_privilege(exc: BaseException) -> str | None:
    """PostgreSQL's `permission denied ...` message (SQLSTATE 42501) when `exc` or its cause is
    one, else None. The message names the object only, never a value."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.exceptions.InsufficientPrivilegeError):
            return str(current.args[0]) if current.args else "permission denied"
        current = current.__cause__ or current.__context__
    return None


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


async def ensure_database(url: str, tls: DatabaseTLS = PLAIN_TLS) -> None:
    """Create the URL's database on its server if it does not exist (safe when racing)."""
    target = make_url(url)
    name = target.database
    if not name:
        raise ValueError("database URL names no database")
    admin = await connect_raw(
        target.set(database="postgres").render_as_string(hide_password=False), tls
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
