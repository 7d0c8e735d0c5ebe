"""Turning a request into exactly one result payload (a verdict or an `error_detail`)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from opentelemetry.trace import SpanKind

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    LLMRubricResultV1,
    RubricScores,
    TokenUsage,
)
from common_core.runtime.tracing import BATCH_ID, traced
from llm_provider_service.application.ports import Judge, ModelChoice
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.domain.errors import JudgeError, ProviderNotConfiguredError
from llm_provider_service.domain.heuristic_judge import HEURISTIC_MODEL
from llm_provider_service.domain.injection import injection_suspected
from llm_provider_service.domain.pricing import CostMode, PriceTable, estimate_cost
from llm_provider_service.metrics import (
    ANSWER_TOKENS,
    ESTIMATED_COST,
    INJECTION_SUSPECTED,
    REQUEST_DURATION,
    REQUESTS,
    TOKENS,
    UNPRICED_RESULTS,
    VERDICT_PROBABILITIES,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Resolved:
    provider: LLMProviderName
    choice: ModelChoice


def llm_call_span(
    operation: str, resolved: _Resolved, metadata: Mapping[str, Any]
) -> AbstractContextManager[Any]:
    """With tracing on, a span around one judge call: the provider, model and operation, and
    the batch the request belongs to when its metadata names one (never a prompt or answer)."""
    batch_id = metadata.get("batch_id") if isinstance(metadata, Mapping) else None
    return traced(
        f"llm {operation}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": resolved.provider.value,
            "gen_ai.request.model": resolved.choice.model,
            BATCH_ID: str(batch_id) if batch_id is not None else None,
        },
    )


class RequestAnswerer:
    """Answers comparison and rubric requests through the configured judges."""

    def __init__(self, settings: Settings, judges: Mapping[LLMProviderName, Judge]) -> None:
        self._settings = settings
        self._judges = dict(judges)

    def _resolve(self, config: LLMConfig, kind: str) -> _Resolved:
        provider = config.provider or self._settings.default_provider
        if provider is LLMProviderName.HEURISTIC:
            model = HEURISTIC_MODEL  # whatever was asked, this is what answers
        else:
            model = config.model or self._settings.default_model(provider)
        max_tokens = config.max_tokens or self._settings.max_tokens(kind)
        return _Resolved(provider, ModelChoice(model, config.temperature, max_tokens))

    async def answer_comparison(
        self, request: LLMComparisonRequestV1, correlation_id: UUID
    ) -> LLMComparisonResultV1:
        """Judge the pair; any failure becomes an error result (never an exception)."""
        resolved = self._resolve(request.llm_config, "comparison")
        suspected = injection_suspected(request.essay_a.text_content, request.essay_b.text_content)
        started = time.monotonic()
        common: dict[str, Any] = {
            "request_id": request.request_id,
            "request_metadata": request.request_metadata,
            "provider": resolved.provider.value,
            "injection_suspected": suspected,
        }
        try:
            judge = self._judge(resolved.provider)
            with llm_call_span("compare", resolved, request.request_metadata):
                judgement = await judge.compare(request, resolved.choice)
        except Exception as exc:
            failure = self._failure(
                exc, correlation_id, "compare_essays", "comparison", resolved, started, suspected
            )
            return LLMComparisonResultV1(**common, **failure)
        latency = time.monotonic() - started
        usage = self._record(
            "comparison", resolved, "success", latency, judgement.usage, suspected, judgement.model
        )
        count_verdict_probability(
            resolved.provider.value, CostMode.SYNC, judgement.probability_essay_a_better
        )
        return LLMComparisonResultV1(
            **common,
            model=judgement.model,
            winner=judgement.answer.winner,
            justification=judgement.answer.justification,
            confidence=judgement.answer.confidence,
            probability_essay_a_better=judgement.probability_essay_a_better,
            prompt_sha256=judgement.prompt.sha256,
            prompt_version=judgement.prompt.version,
            latency_ms=int(latency * 1000),
            usage=usage,
        )

    async def answer_rubric(
        self, request: LLMRubricRequestV1, correlation_id: UUID
    ) -> LLMRubricResultV1:
        """Score the answer; any failure becomes an error result (never an exception)."""
        resolved = self._resolve(request.llm_config, "rubric")
        suspected = injection_suspected(request.answer_text)
        started = time.monotonic()
        common: dict[str, Any] = {
            "request_id": request.request_id,
            "request_metadata": request.request_metadata,
            "provider": resolved.provider.value,
            "injection_suspected": suspected,
        }
        try:
            judge = self._judge(resolved.provider)
            with llm_call_span("score", resolved, request.request_metadata):
                judgement = await judge.score(request, resolved.choice)
        except Exception as exc:
            failure = self._failure(
                exc, correlation_id, "score_rubric", "rubric", resolved, started, suspected
            )
            return LLMRubricResultV1(**common, **failure)
        latency = time.monotonic() - started
        usage = self._record(
            "rubric", resolved, "success", latency, judgement.usage, suspected, judgement.model
        )
        scores = judgement.answer.scores
        return LLMRubricResultV1(
            **common,
            model=judgement.model,
            scores=RubricScores(
                relevance=scores.relevance,
                depth=scores.depth,
                clarity=scores.clarity,
                technical=scores.technical,
            ),
            overall=judgement.answer.overall,
            feedback=judgement.answer.feedback,
            citations=cited_passages(request, judgement.answer.citations),
            prompt_sha256=judgement.prompt.sha256,
            prompt_version=judgement.prompt.version,
            latency_ms=int(latency * 1000),
            usage=usage,
        )

    def _failure(  # noqa: PLR0917 - one private call shape, used twice
        self,
        exc: Exception,
        correlation_id: UUID,
        operation: str,
        kind: str,
        resolved: _Resolved,
        started: float,
        suspected: bool,
    ) -> dict[str, Any]:
        """The error fields of a result (and its metrics) for a request that failed."""
        latency = time.monotonic() - started
        error = self._error_detail(exc, correlation_id, operation)
        usage = self._record(
            kind, resolved, error.code.value, latency, _usage_from_details(error.details), suspected
        )
        return {
            "model": resolved.choice.model,
            "error_detail": error,
            "latency_ms": int(latency * 1000),
            "usage": usage,
        }

    def _judge(self, provider: LLMProviderName) -> Judge:
        judge = self._judges.get(provider)
        if judge is None:
            raise ProviderNotConfiguredError(
                f"provider {provider.value!r} is not configured on this service",
                details={"provider": provider.value},
            )
        return judge

    def _error_detail(self, exc: Exception, correlation_id: UUID, operation: str) -> ErrorDetail:
        if isinstance(exc, JudgeError):
            return exc.to_error_detail(
                correlation_id=correlation_id, service=SERVICE_NAME, operation=operation
            )
        log.error(
            "judge_failed_unexpectedly",
            error_type=type(exc).__name__,
            operation=operation,
            exc_info=exc,
        )
        return ErrorDetail(
            code=ErrorCode.INTERNAL,
            message=f"unexpected {type(exc).__name__} while judging",
            correlation_id=correlation_id,
            service=SERVICE_NAME,
            operation=operation,
            retryable=False,
        )

    def _record(  # noqa: PLR0917 - one private call shape, used three times
        self,
        kind: str,
        resolved: _Resolved,
        outcome: str,
        latency: float,
        usage: TokenUsage,
        suspected: bool,
        answered_by: str | None = None,
    ) -> TokenUsage:
        """Count the request in the metrics; the usage with its estimated cost (sync mode)."""
        provider, model = resolved.provider.value, resolved.choice.model
        REQUESTS.labels(provider=provider, model=model, kind=kind, outcome=outcome).inc()
        REQUEST_DURATION.labels(provider=provider, kind=kind).observe(latency)
        if suspected:
            INJECTION_SUSPECTED.labels(kind=kind).inc()
        if outcome == "success" and provider != LLMProviderName.HEURISTIC.value:
            ANSWER_TOKENS.labels(provider=provider, kind=kind).observe(usage.completion_tokens)
        table = self._settings.price_table
        priced = price_usage(table, provider, (model, answered_by), usage, CostMode.SYNC)
        count_usage(provider, model, priced, CostMode.SYNC)
        return priced


def price_usage(
    table: PriceTable,
    provider: str,
    models: tuple[str, str | None],
    usage: TokenUsage,
    mode: str,
) -> TokenUsage:
    """The usage with its estimated cost (`count_usage` counts it in the metrics).

    `models` are the model asked for and the one that answered (a dated snapshot, say); the
    first one with a price prices the usage. Without one the cost is None, never 0, with a
    warning. Batch-mode results pass `mode="batch"`.
    """
    requested, answered = models
    cost = estimate_cost(table, provider, requested, usage, mode)
    if cost is None and answered and answered != requested:
        cost = estimate_cost(table, provider, answered, usage, mode)
    if cost is None:
        log.warning(
            "model_price_unknown",
            provider=provider,
            model=requested,
            answered_by=answered,
            price_table_as_of=table.as_of,
        )
    return usage.model_copy(update={"estimated_cost_usd": cost})


def count_usage(provider: str, model: str, usage: TokenUsage, mode: str) -> None:
    """Count a priced usage in the token and cost metrics (a null cost in
    `huleedu_llm_unpriced_results_total`)."""
    labels = {"provider": provider, "model": model, "mode": str(mode)}
    for direction, tokens in (
        ("prompt", usage.prompt_tokens),
        ("completion", usage.completion_tokens),
        ("cached_prompt", usage.cached_prompt_tokens),
        ("cache_write", usage.cache_write_tokens),
    ):
        TOKENS.labels(direction=direction, **labels).inc(tokens)
    if usage.estimated_cost_usd is None:
        UNPRICED_RESULTS.labels(**labels).inc()
    else:
        ESTIMATED_COST.labels(**labels).inc(usage.estimated_cost_usd)


def count_verdict_probability(provider: str, mode: str, probability: float | None) -> None:
    """Count a verdict as carrying the judge's probability or not (a compatible server that
    returns no logprobs, a refusing model, Anthropic)."""
    outcome = "absent" if probability is None else "present"
    VERDICT_PROBABILITIES.labels(provider=provider, mode=str(mode), outcome=outcome).inc()


def answer_key(
    request: LLMComparisonRequestV1 | LLMRubricRequestV1, message_key: str | None
) -> str:
    """The Kafka key a request's answer is published with: its `callback_key`, else the key the
    request arrived with, else its request id."""
    return request.callback_key or message_key or str(request.request_id)


def cited_passages(request: LLMRubricRequestV1, cited: tuple[str, ...]) -> list[str]:
    """The cited ids that name a passage of the request, once each, in the request's order (a
    model may invent ids; those are dropped)."""
    named = set(cited)
    ids = (p.passage_id for p in request.reference_passages if p.passage_id in named)
    return list(dict.fromkeys(ids))


def _usage_from_details(details: Mapping[str, Any]) -> TokenUsage:
    return TokenUsage(
        prompt_tokens=int(details.get("prompt_tokens", 0)),
        completion_tokens=int(details.get("completion_tokens", 0)),
        cached_prompt_tokens=int(details.get("cached_prompt_tokens", 0)),
        cache_write_tokens=int(details.get("cache_write_tokens", 0)),
    )
