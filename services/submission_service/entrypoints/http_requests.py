"""What the routes read from a request: strict JSON, the caller's identity, the correlation id,
path ids and the optional body."""

from __future__ import annotations

import json
import math
from typing import Any
from uuid import UUID

from pydantic import ValidationError
from quart import Quart, Request, g, request
from quart.json.provider import JSONProvider
from quart_schema import RequestSchemaValidationError

from submission_service.adapters.identity import JwtIdentityReader
from submission_service.domain.errors import InvalidInputError
from submission_service.domain.identity import Identity
from submission_service.entrypoints.http_schemas import SubmitIn, is_uuid


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is beyond the range of a double")
    return value


def loads_json(data: str | bytes) -> Any:
    """RFC 8259 JSON: no NaN or Infinity, no number beyond a double (jsonb stores neither)."""
    return json.loads(data, parse_constant=_not_json, parse_float=_finite_float)


class StrictJSONProvider(JSONProvider):
    """Another provider (quart-schema's) writes; request bodies are read by `loads_json`."""

    def __init__(self, app: Quart, writer: JSONProvider) -> None:
        super().__init__(app)
        self._writer = writer

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize as the writer does."""
        return self._writer.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a request body; ValueError for anything RFC 8259 does not call JSON."""
        return loads_json(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        """A JSON response as the writer makes it."""
        return self._writer.response(*args, **kwargs)


class SubmissionRequest(Request):
    """Malformed JSON is a specific client error, not a generic 400."""

    def on_json_loading_failed(self, error: Exception) -> Any:
        """Raise `invalid_json` instead of werkzeug's anonymous BadRequest."""
        raise InvalidInputError("the body is not valid JSON", reason="invalid_json") from error


def correlation_id() -> UUID:
    cid: UUID = g.correlation_id
    return cid


async def identify(reader: JwtIdentityReader) -> Identity:
    """The caller's identity from the request's headers; raises AuthenticationError."""
    return await reader.identify(
        request.headers.get("Authorization"), request.headers.get("X-Anonymous-Token")
    )


def path_uuid(value: str, field: str) -> UUID:
    if not is_uuid(value):
        raise InvalidInputError(f"{field} must be a UUID", reason="invalid_uuid", field=field)
    return UUID(value)


async def optional_json_body(model: type[SubmitIn]) -> SubmitIn:
    raw = await request.get_data()
    if not raw or not raw.strip():
        return model()
    try:
        document = loads_json(raw)
    except ValueError as exc:
        raise InvalidInputError("the body is not valid JSON", reason="invalid_json") from exc
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from exc
