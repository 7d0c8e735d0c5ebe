"""What counts as "the database is unavailable", and the HTTP answer every service gives then."""

from __future__ import annotations

import asyncpg
from quart import Quart
from sqlalchemy import exc as sa_exc

from common_core.runtime.database import is_connection_lost, is_database_unavailable
from common_core.runtime.http import register_database_error_handlers


def _dbapi_error(orig: BaseException, *, invalidated: bool = False) -> sa_exc.DBAPIError:
    error = sa_exc.DBAPIError("SELECT 1", None, orig, connection_invalidated=invalidated)
    error.__cause__ = orig
    return error


def _pending_rollback_after_a_lost_connection() -> sa_exc.PendingRollbackError:
    return sa_exc.PendingRollbackError(
        "Can't reconnect until invalid transaction is rolled back.", code="8s2b"
    )


class TestDatabaseUnavailable:
    def test_refused_lost_and_restarting_servers_are_unavailable(self) -> None:
        for error in (
            ConnectionRefusedError(111, "Connect call failed"),
            asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
            _dbapi_error(asyncpg.exceptions.ConnectionDoesNotExistError("closed")),
            _dbapi_error(RuntimeError("socket gone"), invalidated=True),
            _dbapi_error(asyncpg.exceptions.InternalClientError("cannot switch to state 15")),
            _pending_rollback_after_a_lost_connection(),
            sa_exc.TimeoutError("QueuePool limit reached"),
        ):
            assert is_database_unavailable(error), error

    def test_a_statement_the_database_refuses_is_not_an_outage(self) -> None:
        for error in (
            sa_exc.IntegrityError("INSERT", None, asyncpg.exceptions.UniqueViolationError("dup")),
            sa_exc.PendingRollbackError("flush failed earlier", code="7s2a"),
            ValueError("a bug"),
            FileNotFoundError("no such file"),
        ):
            assert not is_database_unavailable(error), error

    def test_a_group_is_unavailable_only_when_all_its_errors_are(self) -> None:
        lost = _pending_rollback_after_a_lost_connection()

        assert is_database_unavailable(ExceptionGroup("cleanup", [lost]))
        assert not is_database_unavailable(ExceptionGroup("cleanup", [lost, ValueError("x")]))


class TestConnectionLost:
    def test_protocol_state_errors_and_server_shutdowns_are_lost_connections(self) -> None:
        for error in (
            asyncpg.exceptions.InternalClientError("cannot switch to state 15"),
            asyncpg.exceptions.InterfaceError("another operation is in progress"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"),
            ConnectionResetError(104, "reset"),
        ):
            assert is_connection_lost(_dbapi_error(error)), error

    def test_errors_about_the_statement_or_call_keep_the_connection(self) -> None:
        for error in (
            asyncpg.exceptions.UniqueViolationError("dup"),
            asyncpg.exceptions.SerializationError("retry"),
            asyncpg.exceptions.DataError("invalid input for query argument $1"),
        ):
            assert not is_connection_lost(_dbapi_error(error)), error


def _app(raise_in_handler: BaseException | None, raise_in_teardown: BaseException | None) -> Quart:
    app = Quart("test")
    register_database_error_handlers(app)

    @app.get("/thing")
    async def thing() -> dict[str, str]:
        if raise_in_handler is not None:
            raise raise_in_handler
        return {"ok": "yes"}

    @app.teardown_request
    async def close_scope(_exc: BaseException | None) -> None:
        if raise_in_teardown is not None:
            raise raise_in_teardown

    return app


class TestHttpAnswers:
    async def test_unavailable_database_in_a_handler_answers_503_with_retry_after(self) -> None:
        lost = _dbapi_error(ConnectionRefusedError(111, "refused"), invalidated=True)
        response = await _app(lost, None).test_client().get("/thing")

        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert (await response.get_json())["code"] == "service_unavailable"

    async def test_a_commit_failing_after_the_handler_answers_503_not_a_bare_500(self) -> None:
        closed = ExceptionGroup("cleanup", [_pending_rollback_after_a_lost_connection()])
        response = await _app(None, closed).test_client().get("/thing")

        assert response.status_code == 503
        assert (await response.get_json())["code"] == "service_unavailable"

    async def test_other_database_errors_answer_a_json_500(self) -> None:
        duplicate = sa_exc.IntegrityError("INSERT", None, ValueError("dup"))
        for app in (_app(duplicate, None), _app(None, ValueError("bug in cleanup"))):
            response = await app.test_client().get("/thing")

            assert response.status_code == 500
            assert (await response.get_json())["code"] == "internal_error"
