"""Which connection failures are told as a database refusal, naming which setting."""

from __future__ import annotations

import socket
import ssl

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from common_core.runtime.database_refusals import DatabaseRefusal, database_refusal


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    """As SQLAlchemy's engine raises it: the driver's error as the cause."""
    error = sa_exc.DBAPIError("SELECT 1", None, orig)
    error.__cause__ = orig
    return error


def _refusal(error: BaseException, *, password_from_file: bool = False) -> DatabaseRefusal:
    refusal = database_refusal(error, password_from_file=password_from_file)
    assert refusal is not None, error
    return refusal


class TestSettingNamed:
    def test_an_untrusted_certificate_names_the_root_certificate(self) -> None:
        error = ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get issuer")
        refusal = _refusal(_wrapped(error))
        assert (refusal.setting, refusal.permanent) == ("DATABASE_SSLROOTCERT", True)
        assert "unable to get issuer" in refusal.cause

    def test_a_server_without_tls_or_a_tls_only_server_names_the_mode(self) -> None:
        for error in (
            ConnectionError("PostgreSQL server at 127.0.0.1:5432 rejected SSL upgrade"),
            asyncpg.exceptions.InvalidAuthorizationSpecificationError(
                'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", no encryption'
            ),
            ssl.SSLError(1, "wrong version number"),
        ):
            refusal = _refusal(error)
            assert (refusal.setting, refusal.permanent) == ("DATABASE_SSLMODE", True), error

    def test_a_refused_password_names_where_the_password_comes_from(self) -> None:
        error = asyncpg.exceptions.InvalidPasswordError('password authentication failed for "u"')
        assert _refusal(error).setting == "DATABASE_URL"
        from_file = _refusal(_wrapped(error), password_from_file=True)
        assert (from_file.setting, from_file.permanent) == ("DATABASE_PASSWORD_FILE", True)

    def test_a_server_that_does_not_answer_may_come_back(self) -> None:
        for error in (
            ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)"),
            OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),
            socket.gaierror(-2, "Name or service not known"),
            TimeoutError(),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        ):
            refusal = _refusal(_wrapped(error))
            assert (refusal.setting, refusal.permanent) == ("DATABASE_URL", False), error


class TestOtherFailures:
    @pytest.mark.parametrize(
        "error",
        [
            FileNotFoundError(2, "No such file or directory"),
            RuntimeError("a bug"),
            sa_exc.ProgrammingError("ALTER", None, asyncpg.exceptions.SyntaxOrAccessError("x")),
        ],
    )
    def test_are_left_to_raise(self, error: BaseException) -> None:
        assert database_refusal(error, password_from_file=False) is None
