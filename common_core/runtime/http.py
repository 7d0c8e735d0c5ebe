"""Pieces every service's Quart app shares: liveness, readiness, `/metrics`, JSON errors, and the
models and OpenAPI provider with which an app describes them at `/openapi.json`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import asyncpg
import structlog
from hypercorn.typing import (
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendCallable,
    ASGISendEvent,
)
from pydantic import BaseModel, ConfigDict, Field
from quart import Quart, Response, has_request_context, jsonify, request
from quart.asgi import ASGIHTTPConnection
from quart_schema import (
    HttpSecurityScheme,
    Info,
    OpenAPIProvider,
    PydanticDumpOptions,
    QuartSchema,
    document_response,
    hide,
    security_scheme,
)
from quart_schema.conversion import model_schema
from quart_schema.typing import Model
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from common_core.errors import NotReadyError
from common_core.runtime.database import is_database_unavailable
from common_core.runtime.error_text import describe_error
from common_core.runtime.http_metrics import ROUTE_SCOPE_KEY, UNMATCHED_ROUTE, measure_requests
from common_core.runtime.metrics import render_metrics

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 tells clients to wait before retrying while the database is unavailable."""

# What a database failure can raise into a handler: SQLAlchemy's errors, asyncpg's own (a raw
# connection), and the OS's for a refused or reset connection (TimeoutError is an OSError).
_DATABASE_ERROR_TYPES: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    asyncpg.exceptions.PostgresError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)

OPERATIONAL_PATHS = frozenset({"/healthz", "/healthz/ready", "/metrics"})

ReadinessCheck = Callable[[], Awaitable[None]]
"""Raises when the dependency is not usable; returns None when it is."""

F = TypeVar("F", bound=Callable[..., Any])


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Reply):
    """Every failure: a specific code, a message and, for bad input, the field."""

    code: str
    message: str
    field: str | None = None


class HealthOut(_Reply):
    """Liveness."""

    status: str


class ReadinessOut(_Reply):
    """Readiness of each dependency."""

    status: str
    checks: dict[str, str]


class RetryAfterHeaders(BaseModel):
    """When to retry a 503."""

    retry_after: int = Field(description="Seconds to wait before retrying.")


# A 503 (common_core's database handler) says when to retry.
_ERROR_HEADERS: dict[int, type[BaseModel]] = {503: RetryAfterHeaders}


def errors(
    *statuses: int, headers: Mapping[int, type[BaseModel]] | None = None
) -> Callable[[F], F]:
    """Document the JSON error body (`ErrorOut`) for each status a route can answer with, with
    the response headers of a status (`headers`; a 503 always says when to retry)."""
    documented = {**_ERROR_HEADERS, **(headers or {})}

    def decorator(func: F) -> F:
        for status in statuses:
            func = document_response(ErrorOut, status, documented.get(status))(func)
        return func

    return decorator


def error_body(code: str, message: str, field: str | None = None) -> dict[str, str]:
    """The JSON error shape of every service: `{code, message, field?}`."""
    body = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def register_operational_routes(
    app: Quart, readiness: Mapping[str, ReadinessCheck], *, check_timeout: float = 3.0
) -> None:
    """Add `/healthz` (liveness), `/healthz/ready` (each check within a timeout) and `/metrics`,
    and measure the app's other requests (`http_metrics`: by route, status and duration)."""
    measure_requests(app, uncounted=OPERATIONAL_PATHS)

    @app.get("/healthz")
    async def healthz() -> tuple[dict[str, str], int]:
        """Liveness: the process answers."""
        return {"status": "ok"}, 200

    @app.get("/healthz/ready")
    async def ready() -> tuple[dict[str, object], int, dict[str, str]]:
        """Readiness: every dependency check passes (503 with each check's state otherwise)."""
        results: dict[str, str] = {}
        for name, check in readiness.items():
            try:
                await asyncio.wait_for(check(), timeout=check_timeout)
                results[name] = "ok"
            except NotReadyError as exc:
                results[name] = f"unavailable: {exc}"
            except Exception as exc:
                results[name] = f"unavailable: {type(exc).__name__}"
        if all(v == "ok" for v in results.values()):
            return {"status": "ready", "checks": results}, 200, {}
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return {"status": "not_ready", "checks": results}, 503, retry

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, status=200, content_type=content_type)

    # What an app mounting quart-schema documents at /openapi.json (inert without it).
    document_response(HealthOut, 200)(healthz)
    document_response(ReadinessOut, 200)(ready)
    document_response(ReadinessOut, 503, RetryAfterHeaders)(ready)
    security_scheme([])(healthz)  # no credentials, whatever the document's default
    security_scheme([])(ready)
    hide(metrics)  # Prometheus text format, not JSON


def serve_operations_on_port(app: Quart, ops_port: int) -> None:
    """Answer the operational routes (`OPERATIONAL_PATHS`) only on `ops_port`, and nothing else
    there: the public port carries the API and its document, the operations port what
    Prometheus and the orchestrator ask (404 for the rest on each)."""

    async def split_ports() -> None:
        server = request.scope.get("server")
        on_ops_port = server is not None and server[1] == ops_port
        if (request.path in OPERATIONAL_PATHS) != on_ops_port:
            raise NotFound()

    # First of the hooks, so nothing else (authentication) answers first on the wrong port.
    app.before_request_funcs.setdefault(None, []).insert(0, split_ports)


def request_route() -> str:
    """The current request's route template (`/judge/<token>`), never its raw path: a path may
    carry a credential (a judge's signed link) or an id that must not reach a log line."""
    if not has_request_context() or request.url_rule is None:
        return UNMATCHED_ROUTE
    return request.url_rule.rule


def _log_unhandled(exception_info: Any) -> None:
    """Quart's log of an unhandled exception, naming the route template instead of the path."""
    log.error("request_failed", stage="handler", route=request_route(), exc_info=exception_info)


def register_http_error_handlers(app: Quart) -> None:
    """Turn Quart/werkzeug HTTP errors (404, 405, 413, ...) into the JSON error shape; an
    unhandled exception is logged with its route template, not the raw path (Quart logs the
    path)."""
    app.log_exception = _log_unhandled  # type: ignore[method-assign]

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        status = exc.code or 500
        response = jsonify(error_body(code, exc.description or exc.name or "error"))
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # RFC 9110 §15.5.6
        return response, status


def unavailable_response(retry_after_seconds: int = RETRY_AFTER_SECONDS) -> Response:
    """503 `service_unavailable` with Retry-After: the database cannot serve right now."""
    body = error_body("service_unavailable", "the database is unavailable; retry later")
    return Response(
        json.dumps(body),
        status=503,
        content_type="application/json",
        headers={"Retry-After": str(retry_after_seconds)},
    )


def _internal_error_response() -> Response:
    return Response(
        json.dumps(error_body("internal_error", "internal error")),
        status=500,
        content_type="application/json",
    )


def register_database_error_handlers(app: Quart) -> None:
    """Answer 503 (JSON, Retry-After) while the database is unavailable, never a traceback.

    Covers errors raised by a handler and those raised after it, when the request's dependency
    scope closes (a request-scoped transaction committing on a lost connection), which Quart
    does not hand to its error handlers.
    """

    async def database_error(exc: Exception) -> Response:
        return _failure_response(exc, stage="handler", route=request_route())

    for error_type in _DATABASE_ERROR_TYPES:
        app.register_error_handler(error_type, database_error)
    app.asgi_http_class = DatabaseAwareHTTPConnection


def _failure_response(exc: BaseException, *, stage: str, route: str) -> Response:
    if is_database_unavailable(exc):
        # dishka wraps cleanup failures in a group: what failed is inside.
        shown = exc.exceptions[0] if isinstance(exc, BaseExceptionGroup) else exc
        log.warning(
            "database_unavailable",
            stage=stage,
            route=route,
            error_type=type(shown).__name__,
            error=describe_error(shown),
        )
        return unavailable_response()
    log.error("request_failed", stage=stage, route=route, exc_info=exc)
    return _internal_error_response()


class DatabaseAwareHTTPConnection(ASGIHTTPConnection):
    """Quart's HTTP connection, answering what escapes the app as JSON instead of re-raising.

    Quart re-raises an exception from a teardown function (dishka closing the request scope) to
    hypercorn, which logs "Error in ASGI Framework" with a traceback and answers a bare 500.
    """

    async def __call__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Run the request; an escaping exception becomes a logged 503 or 500 JSON answer."""
        started = False
        disconnected = False

        async def tracking_receive() -> ASGIReceiveEvent:
            nonlocal disconnected
            message = await receive()
            disconnected = disconnected or message["type"] == "http.disconnect"
            return message

        async def tracking_send(message: ASGISendEvent) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().__call__(tracking_receive, tracking_send)
        except Exception as exc:
            # The template the app matched (`measure_requests` keeps it in the scope), never
            # the raw path.
            route = str(self.scope.get(ROUTE_SCOPE_KEY, UNMATCHED_ROUTE))
            response = _failure_response(exc, stage="teardown", route=route)
            if not (started or disconnected):
                await self._send_response(send, response)


_DUMP_OPTIONS: PydanticDumpOptions = {"exclude_unset": True}


def mount_openapi(
    app: Quart,
    title: str,
    provider: type[OpenAPIProvider] | None = None,
    *,
    bearer_auth: bool = False,
) -> QuartSchema:
    """Describe the app at `/openapi.json` (quart-schema, pydantic models, no UI); with
    `bearer_auth`, every operation but the operational ones takes a Bearer JWT (routes name
    their scope in their description).

    Routes return plain dicts that `validate_response` checks against their models; dumping only
    the fields a dict set keeps the answer's keys those of the dict (an absent optional key stays
    absent instead of becoming null), so the JSON is the one the dict would have made.
    """
    app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"] = "pydantic"
    return QuartSchema(
        app,
        info=Info(title=title, version="1.0.0"),
        security_schemes=(
            {"bearer": HttpSecurityScheme(scheme="bearer", bearer_format="JWT")}
            if bearer_auth
            else None
        ),
        security=[{"bearer": []}] if bearer_auth else None,
        openapi_provider_class=provider or ServiceOpenAPIProvider,
        pydantic_dump_options=_DUMP_OPTIONS,
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )


class ServiceOpenAPIProvider(OpenAPIProvider):
    """quart-schema's document with response headers where OpenAPI looks for them (it nests them
    in `content`), header names as HTTP writes them and required query parameters marked."""

    def build_response_object(
        self, model: type[Model], headers_model: type[Model] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Response headers under `headers`, with their HTTP names."""
        response, definitions = super().build_response_object(model, headers_model)
        headers = response["content"].pop("headers", None)
        if headers_model is not None and headers is not None:
            required = {_kebab(name) for name in self.required_fields(headers_model)}
            response["headers"] = {
                http_header_name(name): {**header, "required": name in required}
                for name, header in headers.items()
            }
        return response, definitions

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        """Document `*_id` path parameters as UUID strings (routes take any string, so a bad id
        gets a specific 400 rather than a bare 404)."""
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def build_querystring_parameters(
        self, model: type[Model]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Query parameters, required ones marked."""
        parameters, definitions = super().build_querystring_parameters(model)
        required = self.required_fields(model)
        for parameter in parameters:
            parameter["required"] = parameter["name"] in required
        return parameters, definitions

    def required_fields(self, model: type[Model]) -> set[str]:
        """The names of a model's required fields, as its JSON schema lists them."""
        preference = self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"]
        return set(model_schema(model, preference=preference).get("required", []))


# Headers whose usual spelling is not each word capitalised.
_HEADER_NAMES = {"www-authenticate": "WWW-Authenticate"}


def _kebab(field: str) -> str:
    return field.replace("_", "-")


def http_header_name(name: str) -> str:
    """A header as HTTP writes it, from a field name (`retry_after`) or quart-schema's kebab
    form (`retry-after`): `Retry-After`, `WWW-Authenticate`."""
    kebab = _kebab(name).lower()
    return _HEADER_NAMES.get(kebab) or "-".join(part.capitalize() for part in kebab.split("-"))
