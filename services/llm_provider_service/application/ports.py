"""The ports of the use cases: the Protocols they depend on (judges, chat models) and the
records they exchange with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from common_core.events.llm import LLMComparisonRequestV1, LLMRubricRequestV1, TokenUsage
from llm_provider_service.domain.answers import ComparisonAnswer, RubricAnswer
from llm_provider_service.domain.prompts import RenderedPrompt

AnswerT = TypeVar("AnswerT", ComparisonAnswer, RubricAnswer)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model and sampling settings resolved for one request."""

    model: str
    temperature: float | None
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Judgement(Generic[AnswerT]):
    """A judge's answer with what it cost and the prompt it came from."""

    answer: AnswerT
    model: str
    prompt: RenderedPrompt
    usage: TokenUsage


class Judge(Protocol):
    """A provider able to compare two essays and to score an answer on a rubric."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        """Which essay is better; raises a JudgeError when no answer can be had."""
        ...

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        """Rubric scores for the answer; raises a JudgeError when no answer can be had."""
        ...


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One structured-output chat call."""

    model: str
    system: str
    user: str
    schema_name: str
    schema: dict[str, Any]
    temperature: float | None
    max_tokens: int
    # Prompt caching (SPEC §2): the first `cache_breakpoint_chars` characters of `user` close the
    # cacheable prefix (Anthropic `cache_control`; 0 = no breakpoint); `cache_key` is OpenAI's
    # `prompt_cache_key` (None = caching off).
    cache_breakpoint_chars: int = 0
    cache_key: str | None = None


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The model's raw text answer and its token usage (`prompt_tokens` counts every input
    token, the cached and cache-written ones included)."""

    text: str | None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0


class ChatModel(Protocol):
    """A chat-completion API (an SDK adapter); raises the domain's provider errors."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Send the prompt, return the answer text."""
        ...
