"""Why a connection to PostgreSQL failed, told as the setting to look at and a cause.

A one-shot command (`migrate`, `grants`) or a start-up that cannot reach its database ends with
one JSON line naming the setting (`DATABASE_URL`, `DATABASE_SSLMODE`, `DATABASE_SSLROOTCERT`,
`DATABASE_SSLCERT`/`DATABASE_SSLKEY`, `DATABASE_PASSWORD_FILE`) instead of an uncaught exception.
A refusal that waiting cannot cure (a certificate not trusted, a password refused) is `permanent`;
a server that does not answer may come back, so a job or an orchestrator retries.

The cause is the exception's class and the server's or the TLS library's message: they name the
user, the host and the certificate problem, never a password or a statement's parameter.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class DatabaseRefusal:
    """The setting to check, what went wrong, and whether retrying can help."""

    setting: str
    cause: str
    permanent: bool


_AUTHENTICATION = (
    asyncpg.exceptions.InvalidPasswordError,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
)


# No answer, a name that does not resolve, or a server not taking connections yet.
_UNANSWERED = (
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and every exception it was raised from or during, innermost last."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _describe(error: BaseException) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _tls_refusal(cause: BaseException) -> DatabaseRefusal | None:
    if isinstance(cause, ssl.SSLCertVerificationError):
        return DatabaseRefusal(
            "DATABASE_SSLROOTCERT", f"the server's certificate: {_describe(cause)}", True
        )
    if isinstance(cause, ssl.SSLError):
        return DatabaseRefusal("DATABASE_SSLMODE", f"TLS: {_describe(cause)}", True)
    if isinstance(cause, ConnectionError) and "SSL" in str(cause):
        # asyncpg: "PostgreSQL server at ... rejected SSL upgrade" (sslmode require and up).
        return DatabaseRefusal("DATABASE_SSLMODE", _describe(cause), True)
    if isinstance(cause, _AUTHENTICATION) and "no encryption" in str(cause):
        # pg_hba.conf accepts this client only over TLS (`hostssl`).
        return DatabaseRefusal("DATABASE_SSLMODE", _describe(cause), True)
    return None


def _server_refusal(cause: BaseException, password_from_file: bool) -> DatabaseRefusal | None:
    if isinstance(cause, _AUTHENTICATION):
        setting = "DATABASE_PASSWORD_FILE" if password_from_file else "DATABASE_URL"
        return DatabaseRefusal(setting, f"the server refused: {_describe(cause)}", True)
    if isinstance(cause, asyncpg.exceptions.InvalidCatalogNameError):
        return DatabaseRefusal("DATABASE_URL", _describe(cause), True)
    return None


def _silence(cause: BaseException) -> DatabaseRefusal | None:
    # A plain OSError is asyncio's "Multiple exceptions: ..." of a host with several addresses;
    # its other subclasses (a file not found, say) are not about the server.
    unanswered = type(cause) is OSError or isinstance(cause, _UNANSWERED)
    if unanswered:
        return DatabaseRefusal(
            "DATABASE_URL", f"the server did not answer: {_describe(cause)}", False
        )
    return None


def database_refusal(error: BaseException, *, password_from_file: bool) -> DatabaseRefusal | None:
    """What refused or could not reach the database, when `error` (or its cause) says so; None
    for any other failure (a bug, a migration's own error), which stays an exception."""
    for cause in _causes(error):
        refusal = (
            _tls_refusal(cause) or _server_refusal(cause, password_from_file) or _silence(cause)
        )
        if refusal is not None:
            return refusal
    return None
