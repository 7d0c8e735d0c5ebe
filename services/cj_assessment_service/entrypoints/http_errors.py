"""The CJ errors as HTTP answers: JSON `{code, message, field?}` with each error's status."""

from __future__ import annotations

from quart import Quart, Response, jsonify

from cj_assessment_service.domain.errors import (
    BatchAlreadyFinished,
    BatchNotCompleted,
    BatchNotFound,
    CJError,
    HumanJudgingConflict,
    HumanJudgingNotConfigured,
    InvalidDeadline,
    InvalidEssaySet,
)
from common_core.runtime.http import error_body


class InvalidParameter(CJError):  # noqa: N818 - named for the condition it reports
    """A path or query parameter that cannot be parsed."""

    http_code = "invalid_parameter"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedBody(CJError):  # noqa: N818 - named for the condition it reports
    """A request body of a media type the route does not read."""

    http_code = "unsupported_media_type"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InvalidBody(CJError):  # noqa: N818 - named for the condition it reports
    """A JSON request body outside its model; `field` names the first field at fault."""

    http_code = "validation_error"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BodyTooLarge(CJError):  # noqa: N818 - named for the condition it reports
    """A request body over the route's size limit."""

    http_code = "body_too_large"
    field = "body"


_STATUS: dict[type[CJError], int] = {
    InvalidParameter: 400,
    InvalidEssaySet: 422,
    UnsupportedBody: 415,
    InvalidBody: 422,
    BodyTooLarge: 413,
    BatchNotFound: 404,
    BatchNotCompleted: 409,
    BatchAlreadyFinished: 409,
    HumanJudgingConflict: 409,
    InvalidDeadline: 400,
    HumanJudgingNotConfigured: 503,
}


def register_cj_error_handler(app: Quart) -> None:
    """Answer every `CJError` a route raises with its status (400 when not listed)."""

    @app.errorhandler(CJError)
    async def cj_error(exc: CJError) -> tuple[Response, int]:
        code = getattr(exc, "http_code", exc.code.value)
        return jsonify(error_body(code, exc.message, getattr(exc, "field", None))), _STATUS.get(
            type(exc), 400
        )
