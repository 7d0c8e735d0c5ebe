"""Judges: one interface (`ports.Judge`) over the providers (chat models behind the SDKs, and
the heuristic)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from common_core.events.llm import LLMComparisonRequestV1, LLMRubricRequestV1, TokenUsage
from llm_provider_service.application.ports import (
    AnswerT,
    ChatModel,
    ChatReply,
    ChatRequest,
    Judgement,
    ModelChoice,
)
from llm_provider_service.domain.answers import (
    COMPARISON_SCHEMA,
    GROUNDED_RUBRIC_SCHEMA,
    RUBRIC_SCHEMA,
    ComparisonAnswer,
    RubricAnswer,
    RubricDimensionScores,
    parse_comparison_answer,
    parse_rubric_answer,
)
from llm_provider_service.domain.errors import MalformedAnswerError
from llm_provider_service.domain.heuristic_judge import compare_essays, score_answer
from llm_provider_service.domain.prompt_caching import CacheTerms, plan_prompt_cache
from llm_provider_service.domain.prompts import (
    RenderedPrompt,
    render_comparison_prompt,
    render_rubric_prompt,
)
from llm_provider_service.domain.verdict_probability import probability_essay_a_better
from llm_provider_service.metrics import PROVIDER_ATTEMPTS

log = structlog.get_logger(__name__)


def comparison_prompt(request: LLMComparisonRequestV1) -> RenderedPrompt:
    """The rendered comparison prompt of a request."""
    return render_comparison_prompt(
        essay_a=request.essay_a.text_content,
        essay_b=request.essay_b.text_content,
        instructions=request.essay_instructions,
        judge_rubric=request.judge_rubric,
        language=request.language,
    )


def rubric_prompt(request: LLMRubricRequestV1) -> RenderedPrompt:
    """The rendered rubric prompt of a request."""
    return render_rubric_prompt(
        answer=request.answer_text,
        question=request.question_text,
        rubric=request.rubric,
        language=request.language,
        passages=[(p.passage_id, p.text) for p in request.reference_passages],
    )


@dataclass(frozen=True, slots=True)
class PromptCall:
    """A request's prompt and the structured answer it asks for."""

    prompt: RenderedPrompt
    schema_name: str
    schema: dict[str, Any]
    # A comparison: its answer starts with the verdict token (whose log-probabilities count).
    is_comparison: bool = False


def prompt_call(request: LLMComparisonRequestV1 | LLMRubricRequestV1) -> PromptCall:
    """The prompt and answer schema of a request (a synchronous call's or a batch item's)."""
    if isinstance(request, LLMComparisonRequestV1):
        return PromptCall(
            comparison_prompt(request), "comparison_verdict", COMPARISON_SCHEMA, is_comparison=True
        )
    if request.reference_passages:
        return PromptCall(rubric_prompt(request), "grounded_rubric_scores", GROUNDED_RUBRIC_SCHEMA)
    return PromptCall(rubric_prompt(request), "rubric_scores", RUBRIC_SCHEMA)


def build_chat_request(
    call: PromptCall,
    *,
    model: str,
    temperature: float | None,
    max_tokens: int,
    cache_terms: CacheTerms | None,
    top_logprobs: int | None = None,
) -> ChatRequest:
    """The chat call of a prompt, with its cache plan (None: caching off) and, for a
    comparison, the verdict's log-probabilities when `top_logprobs` is given; the one way both
    synchronous calls and batch items are built, so both carry the same cache hints."""
    breakpoints: tuple[int, ...] = ()
    cache_key = None
    if cache_terms is not None:
        plan = plan_prompt_cache(
            call.prompt,
            terms=cache_terms,
            extra_prefix_chars=len(json.dumps(call.schema, sort_keys=True)),
        )
        breakpoints, cache_key = plan.breakpoints, plan.key
    return ChatRequest(
        model=model,
        system=call.prompt.system,
        user=call.prompt.user,
        schema_name=call.schema_name,
        schema=call.schema,
        temperature=temperature,
        max_tokens=max_tokens,
        cache_breakpoints=breakpoints,
        cache_key=cache_key,
        top_logprobs=top_logprobs if call.is_comparison else None,
    )


def comparison_probability(reply: ChatReply, answer: ComparisonAnswer) -> float | None:
    """P(essay A is better) from the verdict token of a reply (a synchronous call's or a batch
    item's); None without log-probabilities or when the verdict's token cannot be found."""
    return probability_essay_a_better(reply.text, answer.winner, reply.logprobs)


def _rubric_text(rubric: Any) -> str:
    """The words of a rubric JSON object (keys and string values, nested), for the heuristic."""
    if isinstance(rubric, str):
        return rubric
    if isinstance(rubric, dict):
        return " ".join(f"{key} {_rubric_text(value)}" for key, value in rubric.items())
    if isinstance(rubric, list):
        return " ".join(_rubric_text(item) for item in rubric)
    return ""


class HeuristicJudge:
    """The offline judge (domain/heuristic_judge.py) behind the Judge interface."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        """Compare by text features; the prompt is rendered only to fingerprint the input."""
        verdict = compare_essays(
            essay_a_id=request.essay_a.essay_id,
            essay_a=request.essay_a.text_content,
            essay_b_id=request.essay_b.essay_id,
            essay_b=request.essay_b.text_content,
            instructions=request.essay_instructions,
            rubric=request.judge_rubric or "",
            language=request.language,
        )
        answer = ComparisonAnswer(
            winner=verdict.winner,
            justification=verdict.justification,
            confidence=verdict.confidence,
        )
        return Judgement(
            answer,
            choice.model,
            comparison_prompt(request),
            TokenUsage(),
            probability_essay_a_better=verdict.probability_essay_a_better,
        )

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        """Score by text features."""
        scores = score_answer(
            request.answer_text,
            request.question_text,
            _rubric_text(request.rubric),
            language=request.language,
            references=[(p.passage_id, p.text) for p in request.reference_passages],
        )
        answer = RubricAnswer(
            scores=RubricDimensionScores(
                relevance=scores.relevance,
                depth=scores.depth,
                clarity=scores.clarity,
                technical=scores.technical,
            ),
            overall=scores.overall,
            feedback=scores.feedback,
            citations=scores.citations,
        )
        return Judgement(answer, choice.model, rubric_prompt(request), TokenUsage())


class ChatJudge:
    """A judge backed by a chat model: renders the prompt, asks, parses; a malformed answer
    is asked again once, then reported as a parse error."""

    def __init__(
        self,
        provider: str,
        chat: ChatModel,
        *,
        parse_attempts: int = 2,
        cache_terms: Callable[[str], CacheTerms] | None = None,
        top_logprobs: int | None = None,
    ) -> None:
        """`cache_terms(model)`: what prompt caching costs for the model (its minimum prefix,
        its write and read prices); None turns prompt caching off. `top_logprobs`: ask for the
        verdict's log-probabilities with this many alternatives (None: the provider has none,
        or they are off)."""
        self._provider = provider
        self._chat = chat
        self._parse_attempts = parse_attempts
        self._cache_terms = cache_terms
        self._top_logprobs = top_logprobs

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        """Ask the model which essay is better (and, from the verdict token's
        log-probabilities, how likely essay A is the better one)."""
        return await self._ask(
            prompt_call(request), choice, parse_comparison_answer, comparison_probability
        )

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        """Ask the model to score the answer (and, with reference passages, to cite them)."""
        return await self._ask(prompt_call(request), choice, parse_rubric_answer)

    async def _ask(
        self,
        prompt: PromptCall,
        choice: ModelChoice,
        parse: Callable[[str | None], AnswerT],
        probability: Callable[[ChatReply, AnswerT], float | None] | None = None,
    ) -> Judgement[AnswerT]:
        terms = self._cache_terms(choice.model) if self._cache_terms is not None else None
        call = build_chat_request(
            prompt,
            model=choice.model,
            temperature=choice.temperature,
            max_tokens=choice.max_tokens,
            cache_terms=terms,
            top_logprobs=self._top_logprobs,
        )
        spent: Counter[str] = Counter()
        last_error: MalformedAnswerError | None = None
        for attempt in range(1, self._parse_attempts + 1):
            reply = await self._chat.complete(call)
            spent.update(
                prompt_tokens=reply.prompt_tokens,
                completion_tokens=reply.completion_tokens,
                cached_prompt_tokens=reply.cached_prompt_tokens,
                cache_write_tokens=reply.cache_write_tokens,
            )
            try:
                answer = parse(reply.text)
            except MalformedAnswerError as exc:
                PROVIDER_ATTEMPTS.labels(provider=self._provider, outcome="malformed").inc()
                log.warning("malformed_model_answer", provider=self._provider, attempt=attempt)
                last_error = exc
                continue
            return Judgement(
                answer,
                reply.model or choice.model,
                prompt.prompt,
                TokenUsage(**spent),
                probability(reply, answer) if probability is not None else None,
            )
        assert last_error is not None
        raise MalformedAnswerError(
            f"{last_error.message} (after {self._parse_attempts} attempts)", details=dict(spent)
        )
