"""The service's error hierarchy: every way a judgement can fail, with its ErrorCode."""

from __future__ import annotations

from typing import Any

from common_core.errors import ErrorCode, HuleEduError


class JudgeError(HuleEduError):
    """A request could not be answered; carried to the caller as an `error_detail`."""

    code = ErrorCode.PROVIDER_ERROR
    retryable = False


class RetryableProviderError(JudgeError):
    """A failure worth retrying (429, 5xx, timeouts, dropped connections)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class ProviderRateLimitedError(RetryableProviderError):
    """The provider answered 429."""

    code = ErrorCode.RATE_LIMITED


class ProviderServerError(RetryableProviderError):
    """The provider answered 5xx or dropped the connection."""

    code = ErrorCode.PROVIDER_ERROR


class ProviderTimeoutError(RetryableProviderError):
    """The provider did not answer within the request timeout."""

    code = ErrorCode.TIMEOUT


class ProviderAuthenticationError(JudgeError):
    """401/403: the key is missing, wrong or not allowed to use the model."""

    code = ErrorCode.AUTHENTICATION


class ProviderRequestRejectedError(JudgeError):
    """400/404/422: the provider refused the request as malformed (bad model name, ...)."""

    code = ErrorCode.VALIDATION


class ContentPolicyError(JudgeError):
    """The provider refused to answer for content-policy reasons."""

    code = ErrorCode.CONTENT_POLICY


class MalformedAnswerError(JudgeError):
    """The model answered, but not in the agreed JSON shape."""

    code = ErrorCode.PARSE_ERROR


class CircuitOpenError(JudgeError):
    """The provider's circuit breaker is open: calls are refused until its cool-down passes."""

    code = ErrorCode.CIRCUIT_OPEN
    retryable = True


class ProviderNotConfiguredError(JudgeError):
    """The request named a provider this service has no key for."""

    code = ErrorCode.PROVIDER_UNAVAILABLE


class BatchExpiredError(JudgeError):
    """The provider batch ended (its completion window passed) before this item was answered."""

    code = ErrorCode.TIMEOUT
    retryable = True


class BatchCancelledError(JudgeError):
    """The provider batch was cancelled before this item was answered."""

    code = ErrorCode.CANCELLED
    retryable = True


class BatchRejectedError(JudgeError):
    """The provider refused the whole batch (its input failed validation)."""

    code = ErrorCode.VALIDATION
