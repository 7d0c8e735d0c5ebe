"""Pieces every service's Quart app shares: liveness, readiness, `/metrics`, JSON errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from common_core.runtime.metrics import render_metrics

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when the dependency is not usable; returns None when it is."""


def error_body(code: str, message: str, field: str | None = None) -> dict[str, str]:
    """The JSON error shape of every service: `{code, message, field?}`."""
    body = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def register_operational_routes(
    app: Quart, readiness: Mapping[str, ReadinessCheck], *, check_timeout: float = 3.0
) -> None:
    """Add `/healthz` (liveness), `/healthz/ready` (each check within a timeout) and `/metrics`."""

    @app.get("/healthz")
    async def healthz() -> tuple[dict[str, str], int]:
        return {"status": "ok"}, 200

    @app.get("/healthz/ready")
    async def ready() -> tuple[dict[str, object], int]:
        results: dict[str, str] = {}
        for name, check in readiness.items():
            try:
                await asyncio.wait_for(check(), timeout=check_timeout)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        healthy = all(v == "ok" for v in results.values())
        return {"status": "ready" if healthy else "not_ready", "checks": results}, (
            200 if healthy else 503
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, status=200, content_type=content_type)


def register_http_error_handlers(app: Quart) -> None:
    """Turn Quart/werkzeug HTTP errors (404, 405, 413, ...) into the JSON error shape."""

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        return jsonify(error_body(code, exc.description or exc.name or "error")), status
