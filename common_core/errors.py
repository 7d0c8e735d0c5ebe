"""The error model shared by every service: closed error-code enums and ErrorDetail."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common_core.limits import clean_json, clean_text

MAX_ERROR_MESSAGE_CHARS = 2000


class ErrorCode(StrEnum):
    """Closed set of error codes carried in events and HTTP error bodies."""

    VALIDATION = "validation"
    INSUFFICIENT_ESSAYS = "insufficient_essays"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    PROVIDER_ERROR = "provider_error"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    AUTHENTICATION = "authentication"
    PARSE_ERROR = "parse_error"
    CONTENT_POLICY = "content_policy"
    CIRCUIT_OPEN = "circuit_open"
    LOW_SUCCESS_RATE = "low_success_rate"
    STUCK_BATCH = "stuck_batch"
    CANCELLED = "cancelled"
    SCORING_FAILED = "scoring_failed"
    INTERNAL = "internal"


class ErrorDetail(BaseModel):
    """A structured, stack-trace-free description of a failure, as carried in events."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: ErrorCode
    message: str = Field(min_length=1, max_length=MAX_ERROR_MESSAGE_CHARS)
    correlation_id: UUID
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    service: str
    operation: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)

    # An error describes what went wrong, often quoting input it was given: it is made storable
    # (NULs and lone surrogates replaced, cut to size) rather than rejected, so reporting a bad
    # input can never fail in turn.
    @field_validator("message", mode="before")
    @classmethod
    def _storable_message(cls, value: object) -> object:
        return clean_text(value, MAX_ERROR_MESSAGE_CHARS) if isinstance(value, str) else value

    @field_validator("details", mode="before")
    @classmethod
    def _storable_details(cls, value: object) -> object:
        return clean_json(value) if isinstance(value, dict) else value


class HuleEduError(Exception):
    """Base of every service's error hierarchy; carries an ErrorCode for translation at edges."""

    code: ErrorCode = ErrorCode.INTERNAL
    retryable: bool = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_error_detail(self, *, correlation_id: UUID, service: str, operation: str) -> ErrorDetail:
        """Describe this error as an ErrorDetail for an event."""
        return ErrorDetail(
            code=self.code,
            message=self.message,
            correlation_id=correlation_id,
            service=service,
            operation=operation,
            retryable=self.retryable,
            details=self.details,
        )


class NotReadyError(Exception):
    """A readiness check's failure whose message is meant for the operator (names, counts,
    nothing secret): `/healthz/ready` shows it, where other failures show their type only."""
