"""Request logs name the route template, never the raw path (a path may carry a credential:
a judge's signed link): an unhandled exception's log line and hypercorn's access lines."""

from __future__ import annotations

from typing import Any

from hypercorn.config import Config
from quart import Quart
from structlog.testing import capture_logs

from common_core.runtime.http import (
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from common_core.runtime.http_auth import SigningKeysUnavailableError, register_signing_key_errors
from common_core.runtime.http_metrics import ROUTE_SCOPE_KEY
from common_core.runtime.service_process import RouteAccessLogger

SECRET_TOKEN = "c2VjcmV0LXRva2Vu.c2lnbmF0dXJl"


def _app() -> Quart:
    app = Quart(__name__)
    register_operational_routes(app, {})
    register_http_error_handlers(app)
    register_database_error_handlers(app)

    @app.get("/links/<token>")
    async def broken(token: str) -> str:
        raise RuntimeError("a bug")

    return app


class TestUnhandledExceptions:
    async def test_the_log_line_names_the_route_not_the_path(self) -> None:
        with capture_logs() as logs:
            response = await _app().test_client().get(f"/links/{SECRET_TOKEN}")
        assert response.status_code == 500
        failed = [entry for entry in logs if entry["event"] == "request_failed"]
        assert [entry["route"] for entry in failed] == ["/links/<token>"]
        assert SECRET_TOKEN not in repr(logs)


class TestSigningKeysOutage:
    async def test_the_log_line_names_the_route_not_the_path(self) -> None:
        app = Quart(__name__)
        register_signing_key_errors(app)

        @app.get("/links/<token>")
        async def unreadable_keys(token: str) -> str:
            raise SigningKeysUnavailableError("the JWKS endpoint did not answer")

        with capture_logs() as logs:
            response = await app.test_client().get(f"/links/{SECRET_TOKEN}")
        assert response.status_code == 503
        outage = [entry for entry in logs if entry["event"] == "jwks_unavailable"]
        assert [entry["route"] for entry in outage] == ["/links/<token>"]
        assert SECRET_TOKEN not in repr(logs)


class TestAccessLines:
    def test_access_atoms_carry_the_route_template(self) -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "method": "GET",
            "path": f"/links/{SECRET_TOKEN}",
            "query_string": b"next=1",
            "headers": [],
            "http_version": "1.1",
            "scheme": "http",
            "client": ("127.0.0.1", 5000),
            ROUTE_SCOPE_KEY: "/links/<token>",
        }
        atoms = RouteAccessLogger(Config()).atoms(
            scope,  # type: ignore[arg-type]
            {"status": 200, "headers": []},
            0.01,
        )
        assert atoms["U"] == "/links/<token>"
        assert atoms["r"] == "GET /links/<token> 1.1"
        assert SECRET_TOKEN not in repr(dict(atoms))
