"""The `openai` provider: the official SDK against api.openai.com or any compatible server."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import openai
import structlog
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionTokenLogprob
from pydantic import ValidationError

from llm_provider_service.adapters.status_errors import error_for_status
from llm_provider_service.application.ports import ChatReply, ChatRequest, ReplyTokens
from llm_provider_service.domain.errors import (
    ContentPolicyError,
    JudgeError,
    ProviderServerError,
    ProviderTimeoutError,
)
from llm_provider_service.domain.verdict_probability import (
    TokenAlternative,
    TokenLogprob,
    verdict_offset,
)

log = structlog.get_logger(__name__)

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


def refuses_logprobs(exc: openai.APIStatusError) -> bool:
    """Whether the API refused the call for asking for log-probabilities (reasoning models:
    400 `unsupported_parameter` for `logprobs`, or 403 "not allowed to request logprobs")."""
    if exc.status_code not in {400, 403}:
        return False
    param = str(getattr(exc, "param", "") or "")
    return param in {"logprobs", "top_logprobs"} or "logprobs" in str(exc.message).lower()


class OpenAIChatModel:
    """Structured-output chat completions through `openai.AsyncOpenAI`.

    A call that asks for log-probabilities (`ChatRequest.top_logprobs`) of a model that refuses
    them is sent again once without them, and the model is remembered (for this process), so
    its later calls do not ask: its verdicts then carry no probability."""

    def __init__(self, client: openai.AsyncOpenAI) -> None:
        self._client = client
        self._refusing_logprobs: set[str] = set()

    async def complete(self, request: ChatRequest) -> ChatReply:
        """One call with a JSON-schema `response_format`; the answer is the first choice's text
        (with its tokens' log-probabilities when asked for)."""
        if request.top_logprobs is not None and request.model in self._refusing_logprobs:
            request = dataclasses.replace(request, top_logprobs=None)
        try:
            response, logprobs = await self._create(request)
        except openai.APIStatusError as exc:
            if request.top_logprobs is None or not refuses_logprobs(exc):
                raise translate_openai_error(exc) from None
            self._refusing_logprobs.add(request.model)
            log.warning("openai_logprobs_refused", model=request.model, status=exc.status_code)
            return await self.complete(dataclasses.replace(request, top_logprobs=None))
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc) from None
        tokens = usage_tokens(response.usage)
        if not response.choices:
            return ChatReply(None, response.model, **tokens)
        choice = response.choices[0]
        if choice.finish_reason == "content_filter" or choice.message.refusal:
            raise ContentPolicyError("the model refused to judge the content", details=dict(tokens))
        return ChatReply(
            choice.message.content, response.model or request.model, **tokens, logprobs=logprobs
        )

    async def _create(
        self, request: ChatRequest
    ) -> tuple[ChatCompletion, tuple[TokenLogprob, ...] | None]:
        """The completion, and with log-probabilities asked for, the leading answer tokens'
        (read from the raw JSON, the completion built without them)."""
        body = chat_completion_body(request)
        if request.top_logprobs is None:
            return await self._client.chat.completions.create(**body), None
        raw = await self._client.chat.completions.with_raw_response.create(**body)
        try:
            document = json.loads(raw.content)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ProviderServerError("the OpenAI API answered with something other than JSON")
        completion, logprobs = split_logprobs(document)
        return ChatCompletion.model_construct(**completion), logprobs


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
    if request.top_logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
    return body


def split_logprobs(
    document: dict[str, Any],
) -> tuple[dict[str, Any], tuple[TokenLogprob, ...] | None]:
    """A chat completion's JSON (a synchronous answer's or a batch result's body) without its
    first choice's `logprobs`, and the answer tokens up to the verdict letter read from them
    with the SDK's `ChatCompletionTokenLogprob` (None: none, malformed, or no verdict first).

    Only those few leading tokens are read: the rest (about 90 tokens x (1 + top_logprobs)
    entries, some 30 kB of JSON per verdict) would cost several times the CPU of the rest of the
    response as SDK objects, and no probability is read from them."""
    choices = document.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return document, None
    first = dict(choices[0])
    logprobs = first.pop("logprobs", None)
    completion = {**document, "choices": [first, *choices[1:]]}
    message = first.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    verdict_at = verdict_offset(text) if isinstance(text, str) else None
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if verdict_at is None or not isinstance(content, list):
        return completion, None
    leading: list[ChatCompletionTokenLogprob] = []
    covered = 0
    try:
        for entry in content:
            token = ChatCompletionTokenLogprob.model_validate(entry)
            leading.append(token)
            covered += len(token.token)
            if covered > verdict_at:
                break
    except ValidationError:
        return completion, None
    return completion, tuple(
        TokenLogprob(
            token.token,
            token.logprob,
            tuple(TokenAlternative(top.token, top.logprob) for top in token.top_logprobs),
        )
        for token in leading
    )


def usage_tokens(usage: CompletionUsage | None) -> ReplyTokens:
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
