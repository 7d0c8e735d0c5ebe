"""The submission service's errors; entrypoints translate them to HTTP or consumer decisions."""

from __future__ import annotations

from typing import Any

from common_core.errors import ErrorCode, HuleEduError


class SubmissionError(HuleEduError):
    """Base of every expected failure; `reason` is the specific code shown to clients."""

    reason: str = "submission_error"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        if reason is not None:
            self.reason = reason
        self.field = field


class InvalidInputError(SubmissionError):
    """The request is well-formed but its content is not acceptable."""

    code = ErrorCode.VALIDATION
    reason = "invalid_input"


class AuthenticationError(SubmissionError):
    """No usable identity: missing, malformed, expired or forged credentials."""

    code = ErrorCode.AUTHENTICATION
    reason = "authentication_required"


class ForbiddenError(SubmissionError):
    """The identity is known but may not do this."""

    code = ErrorCode.AUTHENTICATION
    reason = "forbidden"


class NotFoundError(SubmissionError):
    """The entity does not exist for this identity (another identity's data looks absent)."""

    reason = "not_found"


class ConflictError(SubmissionError):
    """The request conflicts with the entity's state (locked, already submitted, key reused)."""

    reason = "conflict"


class WebhookTargetRefusedError(SubmissionError):
    """A webhook URL points somewhere the service will not call."""

    code = ErrorCode.VALIDATION
    reason = "webhook_target_refused"
