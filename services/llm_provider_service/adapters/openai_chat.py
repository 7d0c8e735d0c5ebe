"""The `openai` provider: the official SDK against api.openai.com or any compatible server."""

from __future__ import annotations

from typing import Any

import openai
from openai.types import CompletionUsage

from llm_provider_service.adapters.status_errors import error_for_status
from llm_provider_service.application.ports import ChatReply, ChatRequest
from llm_provider_service.domain.errors import (
    ContentPolicyError,
    JudgeError,
    ProviderServerError,
    ProviderTimeoutError,
)

_CONTENT_POLICY_MARKERS = ("content_policy", "content_filter", "content management policy")


def make_openai_client(
    *, api_key: str, base_url: str | None, timeout_seconds: float
) -> openai.AsyncOpenAI:
    """An SDK client with its own retries off: retries, limits and breaking are ours.

    The aiohttp transport costs far less CPU per call than the default one, which matters with
    many requests in flight (see the throughput benchmark).
    """
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=0,
        timeout=timeout_seconds,
        http_client=openai.DefaultAioHttpClient(timeout=timeout_seconds),
    )


def translate_openai_error(exc: openai.OpenAIError) -> JudgeError:
    """Map an SDK exception onto the service's error hierarchy (status codes only, no body)."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeoutError("the OpenAI API did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderServerError("could not reach the OpenAI API")
    if isinstance(exc, openai.APIStatusError):
        code = str(getattr(exc, "code", "") or "").lower()
        policy = any(m in code or m in str(exc.message).lower() for m in _CONTENT_POLICY_MARKERS)
        return error_for_status(
            "OpenAI", exc.status_code, exc.response.headers, content_policy=policy
        )
    return ProviderServerError(f"OpenAI SDK error: {type(exc).__name__}")


class OpenAIChatModel:
    """Structured-output chat completions through `openai.AsyncOpenAI`."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client

    async def complete(self, request: ChatRequest) -> ChatReply:
        """One call with a JSON-schema `response_format`; the answer is the first choice's text."""
        try:
            response = await self._client.chat.completions.create(**chat_completion_body(request))
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        tokens = usage_tokens(response.usage)
        if not response.choices:
            return ChatReply(None, response.model, **tokens)
        choice = response.choices[0]
        if choice.finish_reason == "content_filter" or choice.message.refusal:
            raise ContentPolicyError("the model refused to judge the content", details=tokens)
        return ChatReply(choice.message.content, response.model or request.model, **tokens)


def chat_completion_body(request: ChatRequest) -> dict[str, Any]:
    """The body of one chat-completion call (a synchronous call's or a batch item's), with the
    request's `prompt_cache_key` when caching is on."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [
            {"role": "system", "content": request.system},
            {"role": "user", "content": request.user},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": request.schema_name, "schema": request.schema, "strict": True},
        },
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.cache_key is not None:
        body["prompt_cache_key"] = request.cache_key
    return body


def usage_tokens(usage: CompletionUsage | None) -> dict[str, int]:
    """Token counts of a completion's usage (a batch result's too); `prompt_tokens` already
    includes the cached ones (`prompt_tokens_details.cached_tokens`). OpenAI charges nothing
    extra for cache writes."""
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0}
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_prompt_tokens": cached,
    }
