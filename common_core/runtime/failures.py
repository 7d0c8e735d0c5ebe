"""Which failures are the infrastructure's (retry for as long as it takes) and which the message's.

A consumer that retries a message-caused failure for ever stalls its partition; one that gives up
on an infrastructure failure loses valid messages. `is_transient` decides between the two by the
exception and its causes: lost or refused connections, timeouts, a database that is starting or
shutting down, serialization conflicts, and Kafka errors the client marks retriable are transient;
everything else (a constraint, a value PostgreSQL refuses, a bug) is the message's.
"""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc

# SQLSTATE classes and codes that say "try again later", not "this statement is wrong".
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57", "58"})  # connection, resources, ops
_TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
    }
)
_TRANSIENT_ASYNCPG = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InternalClientError,  # "cannot switch to state" after a lost connection
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)
_TRANSIENT_SQLALCHEMY = (
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the pool had no connection to give in time
    sa_exc.OperationalError,
)
# asyncpg's own InterfaceErrors are mostly a closed or busy connection; the ones that are the
# data's or the configuration's are also ValueErrors (DataError, ClientConfigurationError) or say
# the feature is unsupported.
_PERMANENT_INTERFACE_ERRORS = (
    ValueError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)

_TRANSIENT_TYPES = (ConnectionError, TimeoutError, *_TRANSIENT_SQLALCHEMY, *_TRANSIENT_ASYNCPG)


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or anything in its cause chain) is an infrastructure failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_transient_here(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_transient_here(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return (
        isinstance(
            exc, (ConnectionError, TimeoutError, *_TRANSIENT_SQLALCHEMY, *_TRANSIENT_ASYNCPG)
        )
        # socket-level failures: unreachable host, reset, broken pipe (not a missing file)
        or (isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError)))
        or (
            isinstance(exc, asyncpg.exceptions.InterfaceError)
            and not isinstance(exc, _PERMANENT_INTERFACE_ERRORS)
        )
        or (isinstance(exc, KafkaError) and _kafka_transient(exc))
        or (isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated)
        or (
            isinstance(sqlstate, str)
            and (sqlstate in _TRANSIENT_SQLSTATES or sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES)
        )
    )


def _kafka_transient(exc: KafkaError) -> bool:
    return bool(getattr(exc, "retriable", False)) or type(exc).__name__ in {
        "KafkaConnectionError",
        "KafkaTimeoutError",
        "NodeNotReadyError",
        "RequestTimedOutError",
    }
