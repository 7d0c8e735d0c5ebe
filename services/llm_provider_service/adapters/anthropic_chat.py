"""The `anthropic` provider: the official SDK (Messages API), asked for a JSON answer."""

from __future__ import annotations

import json
from typing import Any

import anthropic
from anthropic.types import TextBlockParam, Usage

from llm_provider_service.adapters.status_errors import error_for_status
from llm_provider_service.application.ports import ChatReply, ChatRequest, ReplyTokens
from llm_provider_service.domain.errors import (
    ContentPolicyError,
    JudgeError,
    ProviderServerError,
    ProviderTimeoutError,
)


def make_anthropic_client(
    *, api_key: str, base_url: str | None, timeout_seconds: float
) -> anthropic.AsyncAnthropic:
    """An SDK client with its own retries off: retries, limits and breaking are ours.

    The aiohttp transport costs far less CPU per call than the default one, which matters with
    many requests in flight (see the throughput benchmark).
    """
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=timeout_seconds,
        http_client=anthropic.DefaultAioHttpClient(timeout=timeout_seconds),
    )


def translate_anthropic_error(exc: anthropic.AnthropicError) -> JudgeError:
    """Map an SDK exception onto the service's error hierarchy."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeoutError("the Anthropic API did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderServerError("could not reach the Anthropic API")
    if isinstance(exc, anthropic.APIStatusError):
        return error_for_status("Anthropic", exc.status_code, exc.response.headers)
    return ProviderServerError(f"Anthropic SDK error: {type(exc).__name__}")


class AnthropicChatModel:
    """Messages API calls whose system prompt demands a JSON object matching the schema."""

    def __init__(self, client: anthropic.AsyncAnthropic) -> None:
        self._client = client

    async def complete(self, request: ChatRequest) -> ChatReply:
        """One call; the answer is the concatenated text blocks."""
        try:
            response = await self._client.messages.create(**message_params(request))
        except anthropic.AnthropicError as exc:
            raise translate_anthropic_error(exc) from None
        tokens = usage_tokens(response.usage)
        if response.stop_reason == "refusal":
            raise ContentPolicyError("the model refused to judge the content", details=dict(tokens))
        text = "".join(block.text for block in response.content if block.type == "text")
        return ChatReply(text, response.model or request.model, **tokens)


def message_params(request: ChatRequest) -> dict[str, Any]:
    """The Messages API parameters of one call (a synchronous call's or a batch item's): the
    system prompt demands a JSON object matching the schema; the user message carries the cache
    breakpoints."""
    system = (
        f"{request.system}\n\nThe JSON object must match this JSON schema "
        f"({request.schema_name}): {json.dumps(request.schema, sort_keys=True)}"
    )
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "system": system,
        "messages": [{"role": "user", "content": user_content(request)}],
    }
    if request.temperature is not None:
        params["temperature"] = request.temperature
    return params


def usage_tokens(usage: Usage) -> ReplyTokens:
    """Token counts of a message's usage (a batch result's too). Anthropic's `input_tokens`
    excludes the tokens read from or written to the cache; our `prompt_tokens` counts them all."""
    cached = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return {
        "prompt_tokens": usage.input_tokens + cached + written,
        "completion_tokens": usage.output_tokens,
        "cached_prompt_tokens": cached,
        "cache_write_tokens": written,
    }


def user_content(request: ChatRequest) -> str | list[TextBlockParam]:
    """The user message (a synchronous call's or a batch item's): one text, or with cache
    breakpoints one block per cached part, each marked `cache_control` (the static head, then
    essay A), and the rest of the text unmarked, so each part is cached with all before it."""
    cuts = [cut for cut in request.cache_breakpoints if 0 < cut < len(request.user)]
    if not cuts:
        return request.user
    blocks: list[TextBlockParam] = []
    start = 0
    for cut in cuts:
        if cut > start:
            text = request.user[start:cut]
            blocks.append({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
            start = cut
    blocks.append({"type": "text", "text": request.user[start:]})
    return blocks
