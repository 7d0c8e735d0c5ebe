"""Provider batches, pure: how a batch ends, what an item missing from its results means, and
the polling backoff."""

from __future__ import annotations

from enum import StrEnum

from llm_provider_service.domain.errors import (
    BatchCancelledError,
    BatchExpiredError,
    BatchRejectedError,
    JudgeError,
    ProviderServerError,
)


class BatchEnd(StrEnum):
    """How a provider batch ended (OpenAI's and Anthropic's terminal states, one vocabulary)."""

    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


def missing_item_error(end: BatchEnd) -> JudgeError:
    """The error of an item the provider's results do not answer, by how the batch ended."""
    if end is BatchEnd.EXPIRED:
        return BatchExpiredError("the provider batch expired before this request was answered")
    if end is BatchEnd.CANCELLED:
        return BatchCancelledError("the provider batch was cancelled before this request ran")
    if end is BatchEnd.FAILED:
        return BatchRejectedError("the provider rejected the batch this request was part of")
    return ProviderServerError("the provider batch completed without an answer for this request")


def next_poll_interval(current: float, *, initial: float, maximum: float) -> float:
    """Exponential backoff between status checks: doubled each time, within [initial, maximum]."""
    return min(maximum, max(initial, current * 2))
