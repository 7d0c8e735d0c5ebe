"""The Quart app: submission HTTP API (docs/contracts.md), OpenAPI at /openapi.json, JSON errors.

Routes live in the `http_<area>.py` blueprints; `create_app` assembles them."""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID, uuid4

import structlog
from dishka import AsyncContainer
from quart import Quart, Response, g, request
from quart_dishka import QuartDishka
from quart_schema import (
    APIKeySecurityScheme,
    HttpSecurityScheme,
    Info,
    QuartSchema,
    security_scheme,
)
from werkzeug.exceptions import UnsupportedMediaType

from common_core.runtime.http import (
    ReadinessCheck,
    register_database_error_handlers,
    register_operational_routes,
)
from common_core.runtime.http_auth import register_signing_key_errors
from submission_service.config import Settings
from submission_service.domain.errors import InvalidInputError
from submission_service.entrypoints import (
    http_assessments,
    http_erasures,
    http_responses,
    http_webhooks,
)
from submission_service.entrypoints.http_errors import register_error_handlers
from submission_service.entrypoints.http_openapi import PUBLIC, SubmissionOpenAPIProvider
from submission_service.entrypoints.http_requests import StrictJSONProvider, SubmissionRequest


def _check_json_body(body: bytes) -> None:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the body is not UTF-8 JSON", reason="invalid_json") from exc


def _register_request_hooks(app: Quart) -> None:
    @app.before_request
    async def start() -> None:
        header = request.headers.get("X-Correlation-ID", "")
        try:
            g.correlation_id = UUID(header)
        except ValueError:
            g.correlation_id = uuid4()
        structlog.contextvars.bind_contextvars(correlation_id=str(g.correlation_id))
        if request.method in ("POST", "PATCH", "PUT"):
            body = await request.get_data()  # cached; too large raises 413
            if body.strip():
                _check_json_body(body if isinstance(body, bytes) else body.encode())

    @app.teardown_request
    async def unbind(_exc: BaseException | None) -> None:
        structlog.contextvars.unbind_contextvars("correlation_id")

    @app.after_request
    async def finish(response: Response) -> Response:
        if getattr(g, "correlation_id", None) is not None:
            response.headers["X-Correlation-ID"] = str(g.correlation_id)
        return response


def create_app(
    container: AsyncContainer,
    settings: Settings,
    readiness: Mapping[str, ReadinessCheck] | None = None,
) -> Quart:
    """Build the Quart app on a container; nothing connects here."""
    app = Quart("submission_service")
    app.request_class = SubmissionRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"] = "pydantic"
    QuartSchema(
        app,
        info=Info(title="HuleEdu submission service", version="1.0.0"),
        security_schemes={
            "bearer": HttpSecurityScheme(scheme="bearer", bearer_format="JWT"),
            "anonymous": APIKeySecurityScheme(in_="header", name="X-Anonymous-Token"),
        },
        security=[{"bearer": []}, {"anonymous": []}],
        swagger_ui_path="/docs",
        openapi_provider_class=SubmissionOpenAPIProvider,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    app.json = StrictJSONProvider(app, app.json)  # after QuartSchema, which sets its own
    register_error_handlers(app)
    register_signing_key_errors(app)
    register_database_error_handlers(app)
    _register_request_hooks(app)
    register_operational_routes(app, readiness or {})
    _document_operational_routes(app)
    app.register_blueprint(http_responses.bp)
    app.register_blueprint(http_assessments.bp)
    app.register_blueprint(http_webhooks.bp)
    app.register_blueprint(http_erasures.bp)
    QuartDishka(app=app, container=container)
    return app


def _document_operational_routes(app: Quart) -> None:
    # The shared routes (common_core documents them) need no credentials.
    security_scheme(PUBLIC)(app.view_functions["healthz"])
    security_scheme(PUBLIC)(app.view_functions["ready"])
