"""Anthropic's Message Batches API through the official SDK: `messages.batches.create` with one
entry per request (custom_id = request id), `retrieve` for progress, `results` for the answers.

Message batches carry no metadata, so a submission whose answer was lost is found again by its
shape: the oldest batch not yet recorded, created since our chunk was opened, with as many
requests as the chunk. That match is certain because the fleet submits one Anthropic chunk at a
time (`finds_by_key = False`): while a chunk is unrecorded no other chunk of ours can create a
batch."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import anthropic
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse

from llm_provider_service.adapters.anthropic_chat import (
    message_params,
    translate_anthropic_error,
    usage_tokens,
)
from llm_provider_service.application.ports import (
    BatchCall,
    BatchProgress,
    ChatReply,
    ItemOutcome,
)
from llm_provider_service.domain.batches import BatchEnd
from llm_provider_service.domain.errors import (
    BatchCancelledError,
    BatchExpiredError,
    ContentPolicyError,
    JudgeError,
    ProviderAuthenticationError,
    ProviderRateLimitedError,
    ProviderRequestRejectedError,
    ProviderServerError,
)


def _total(batch: MessageBatch) -> int:
    counts = batch.request_counts
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


class AnthropicBatchAPI:
    """The BatchAPI of Anthropic."""

    finds_by_key = False

    def __init__(self, client: anthropic.AsyncAnthropic) -> None:
        self._client = client

    async def submit(self, calls: Sequence[BatchCall], *, key: str) -> str:
        """Create the message batch (`key` is ours only: the API keeps no metadata)."""
        requests: list[Any] = [
            {"custom_id": call.custom_id, "params": message_params(call.request)} for call in calls
        ]
        try:
            batch = await self._client.messages.batches.create(requests=requests)
        except anthropic.AnthropicError as exc:
            raise translate_anthropic_error(exc) from None
        return batch.id

    async def find(
        self, key: str, *, item_count: int, created_after: datetime, known: Collection[str]
    ) -> str | None:
        """The oldest unrecorded batch of the chunk's size created since it was opened."""
        found: str | None = None
        try:
            async for batch in self._client.messages.batches.list(limit=100):
                if batch.created_at < created_after:
                    break
                if batch.id not in known and _total(batch) == item_count:
                    found = batch.id  # newest first: the last match is the oldest
        except anthropic.AnthropicError as exc:
            raise translate_anthropic_error(exc) from None
        return found

    async def progress(self, batch_id: str) -> BatchProgress:
        """Running until `ended`; then cancelled, expired or completed."""
        try:
            batch = await self._client.messages.batches.retrieve(batch_id)
        except anthropic.AnthropicError as exc:
            raise translate_anthropic_error(exc) from None
        if batch.processing_status != "ended":
            return BatchProgress(None, batch.processing_status)
        if batch.cancel_initiated_at is not None or batch.request_counts.canceled:
            end = BatchEnd.CANCELLED
        elif batch.request_counts.expired:
            end = BatchEnd.EXPIRED
        else:
            end = BatchEnd.COMPLETED
        return BatchProgress(end, batch.processing_status)

    async def outcomes(self, batch_id: str) -> list[ItemOutcome]:
        """Every entry of the results file."""
        try:
            results = await self._client.messages.batches.results(batch_id)
            return [_outcome(entry) async for entry in results]
        except anthropic.AnthropicError as exc:
            raise translate_anthropic_error(exc) from None


def _outcome(entry: MessageBatchIndividualResponse) -> ItemOutcome:
    result = entry.result
    if result.type == "succeeded":
        message = result.message
        tokens = usage_tokens(message.usage)
        if message.stop_reason == "refusal":
            error = ContentPolicyError(
                "the model refused to judge the content", details=dict(tokens)
            )
            return ItemOutcome(entry.custom_id, error=error)
        text = "".join(block.text for block in message.content if block.type == "text")
        return ItemOutcome(entry.custom_id, ChatReply(text, message.model, **tokens))
    if result.type == "errored":
        return ItemOutcome(entry.custom_id, error=_errored(result.error.error.type))
    if result.type == "canceled":
        return ItemOutcome(
            entry.custom_id,
            error=BatchCancelledError("the Anthropic batch was cancelled before this request ran"),
        )
    return ItemOutcome(
        entry.custom_id,
        error=BatchExpiredError("the Anthropic batch expired before this request ran"),
    )


def _errored(kind: str) -> JudgeError:
    message = f"the Anthropic batch could not run this request ({kind})"
    if kind in ("invalid_request_error", "not_found_error", "request_too_large"):
        return ProviderRequestRejectedError(message)
    if kind in ("authentication_error", "permission_error"):
        return ProviderAuthenticationError(message)
    if kind == "rate_limit_error":
        return ProviderRateLimitedError(message)
    return ProviderServerError(message)
