"""HTTP error mapping: every failure answered as JSON `{code, message, field?}` with its status."""

from __future__ import annotations

import json

import structlog
from pydantic import ValidationError
from quart import Quart, Response
from quart_schema import RequestSchemaValidationError
from quart_schema.validation import QuerystringValidationError, RequestHeadersValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from common_core.runtime.error_text import describe_error
from common_core.runtime.http import error_body, http_header_name, request_route
from submission_service.domain.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    SubmissionError,
    WebhookTargetRefusedError,
)

log = structlog.get_logger(__name__)


_STATUS_BY_ERROR: tuple[tuple[type[SubmissionError], int], ...] = (
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    # A well-formed URL the SSRF policy will not call: refused, like a forbidden target.
    (WebhookTargetRefusedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 400),
)


# Every 401 carries a Bearer challenge (RFC 9110 §11.6.1); a rejected token adds RFC 6750's code.
AUTH_REALM = "huleedu-submission"


_BEARER_ERRORS = {
    "invalid_token": "invalid_token",
    "token_expired": "invalid_token",
    "invalid_authorization_header": "invalid_request",
}


def authentication_challenge(exc: AuthenticationError) -> str:
    """The WWW-Authenticate value of a 401."""
    challenge = f'Bearer realm="{AUTH_REALM}"'
    error = _BEARER_ERRORS.get(exc.reason)
    return f'{challenge}, error="{error}"' if error else challenge


def _field_of(exc: ValidationError) -> tuple[str | None, str]:
    first = exc.errors(include_url=False)[0] if exc.error_count() else None
    if first is None:
        return None, "invalid input"
    loc = ".".join(str(p) for p in first["loc"]) or None
    return loc, f"{loc}: {first['msg']}" if loc else str(first["msg"])


def register_error_handlers(app: Quart) -> None:
    """One registry translating every failure to `{code, message, field?}`."""

    @app.errorhandler(SubmissionError)
    async def submission_error(exc: SubmissionError) -> tuple[Response, int]:
        status = next((s for t, s in _STATUS_BY_ERROR if isinstance(exc, t)), 400)
        response = Response(
            json.dumps(error_body(exc.reason, exc.message, exc.field)),
            status=status,
            content_type="application/json",
        )
        if isinstance(exc, AuthenticationError):
            response.headers["WWW-Authenticate"] = authentication_challenge(exc)
        elif isinstance(exc, ForbiddenError) and exc.reason == "insufficient_scope":
            scope = exc.details.get("scope", "")
            response.headers["WWW-Authenticate"] = (
                f'Bearer realm="{AUTH_REALM}", error="insufficient_scope", scope="{scope}"'
            )
        return response, status

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> tuple[Response, int]:
        inner = exc.validation_error
        field, message = (
            _field_of(inner) if isinstance(inner, ValidationError) else (None, str(inner))
        )
        if isinstance(exc, RequestHeadersValidationError):
            code, status, field = "invalid_header", 400, _header_name(field)
        elif isinstance(exc, QuerystringValidationError):
            code, status = "invalid_query", 400
        else:
            code, status = "validation_error", 422
        return Response(
            json.dumps(error_body(code, message, field)),
            status=status,
            content_type="application/json",
        ), status

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(status, (exc.name or "error").lower().replace(" ", "_"))
        message = exc.description or exc.name or "error"
        if status == 400 and "JSON" in message:
            code = "invalid_json"
        response = Response(
            json.dumps(error_body(code, message)), status=status, content_type="application/json"
        )
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[Response, int]:
        log.error("unhandled_error", error=describe_error(exc), route=request_route())
        return Response(
            json.dumps(error_body("internal_error", "internal error")),
            status=500,
            content_type="application/json",
        ), 500


def _header_name(field: str | None) -> str | None:
    return None if field is None else http_header_name(field)
