"""What an HTTP status from a provider API means for the service: one mapping for every SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_provider_service.adapters.retry_after import retry_after_seconds
from llm_provider_service.domain.errors import (
    ContentPolicyError,
    JudgeError,
    ProviderAuthenticationError,
    ProviderRateLimitedError,
    ProviderRequestRejectedError,
    ProviderServerError,
)


def error_for_status(
    api: str, status: int, headers: Mapping[str, str], *, content_policy: bool = False
) -> JudgeError:
    """Map a provider's error status onto the error hierarchy (status and advice only, no body).

    429 and 5xx are retryable and carry the provider's `Retry-After`; 401/403 and other 4xx are
    reported at once; `content_policy` marks a 4xx the provider explained as a policy refusal.
    """
    details: dict[str, Any] = {"status": status}
    if status == 429:
        return ProviderRateLimitedError(
            f"the {api} API is rate limiting this service",
            retry_after=retry_after_seconds(headers),
            details=details,
        )
    if status in (401, 403):
        return ProviderAuthenticationError(
            f"the {api} API refused the credentials ({status})", details=details
        )
    if status >= 500:  # Anthropic's 529 "overloaded" included
        return ProviderServerError(
            f"the {api} API failed ({status})",
            retry_after=retry_after_seconds(headers),
            details=details,
        )
    if content_policy:
        return ContentPolicyError(
            f"the {api} API refused the content (content policy)", details=details
        )
    return ProviderRequestRejectedError(
        f"the {api} API rejected the request ({status})", details=details
    )
