"""The callback of a batch-mode request: its provider's answer (or error) as one result event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog

from common_core.errors import ErrorDetail
from common_core.events.envelope import EventEnvelope, decode_event, new_event
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMRubricRequestV1,
    LLMRubricResultV1,
    RubricScores,
    TokenUsage,
)
from llm_provider_service.application.answering import (
    answer_key,
    cited_passages,
    count_usage,
    count_verdict_probability,
    price_usage,
)
from llm_provider_service.application.judging import (
    comparison_probability,
    comparison_prompt,
    rubric_prompt,
)
from llm_provider_service.application.ports import ChatReply, ItemOutcome, QueuedRequest
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.domain.answers import parse_comparison_answer, parse_rubric_answer
from llm_provider_service.domain.errors import JudgeError
from llm_provider_service.domain.injection import injection_suspected
from llm_provider_service.domain.pricing import CostMode
from llm_provider_service.metrics import INJECTION_SUSPECTED, REQUESTS

log = structlog.get_logger(__name__)

COMPARISON = "comparison"
RUBRIC = "rubric"


def request_kind(request: LLMComparisonRequestV1 | LLMRubricRequestV1) -> str:
    """`comparison` or `rubric`."""
    return COMPARISON if isinstance(request, LLMComparisonRequestV1) else RUBRIC


def stored_request(item: QueuedRequest) -> EventEnvelope[Any]:
    """The request envelope a queued item was recorded with."""
    model = LLMComparisonRequestV1 if item.kind == COMPARISON else LLMRubricRequestV1
    return decode_event(item.envelope, model)


def callback_event_id(request_id: UUID) -> UUID:
    """The callback's event id: one per request, so a re-staged callback de-duplicates."""
    return uuid5(NAMESPACE_URL, f"huleedu:llm-batch-result:{request_id}")


@dataclass(frozen=True, slots=True)
class BatchCallback:
    """A batch-mode request's one callback, and what its answer counts in the metrics."""

    topic: str
    envelope: EventEnvelope[Any]
    key: str
    item: QueuedRequest
    model: str
    error: JudgeError | None
    suspected: bool

    def count(self) -> None:
        """Count the answer like a synchronous one (once its transaction has committed)."""
        item = self.item
        outcome = "success" if self.error is None else self.error.code.value
        REQUESTS.labels(
            provider=item.provider, model=self.model, kind=item.kind, outcome=outcome
        ).inc()
        if self.suspected:
            INJECTION_SUSPECTED.labels(kind=item.kind).inc()
        count_usage(item.provider, item.model, self.envelope.data.usage, CostMode.BATCH)
        result = self.envelope.data
        if isinstance(result, LLMComparisonResultV1) and not result.is_error:
            count_verdict_probability(
                item.provider, CostMode.BATCH, result.probability_essay_a_better
            )


class BatchCallbacks:
    """Builds the callbacks of batch-mode requests and counts them like synchronous answers."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def callback(self, item: QueuedRequest, outcome: ItemOutcome) -> BatchCallback:
        """The request's one callback."""
        envelope = stored_request(item)
        request = envelope.data
        error = outcome.error
        reply = outcome.reply
        result: LLMComparisonResultV1 | LLMRubricResultV1
        if isinstance(request, LLMComparisonRequestV1):
            suspected = injection_suspected(
                request.essay_a.text_content, request.essay_b.text_content
            )
            prompt = comparison_prompt(request)
        else:
            suspected = injection_suspected(request.answer_text)
            prompt = rubric_prompt(request)
        usage = price_usage(
            self._settings.price_table,
            item.provider,
            (item.model, reply.model if reply is not None else None),
            _usage(reply),
            CostMode.BATCH,
        )
        common: dict[str, Any] = {
            "request_id": request.request_id,
            "request_metadata": request.request_metadata,
            "provider": item.provider,
            "model": (reply.model if reply is not None and reply.model else item.model),
            "injection_suspected": suspected,
            "prompt_sha256": prompt.sha256,
            "prompt_version": prompt.version,
            "latency_ms": _latency_ms(item.queued_at),
            "usage": usage,
        }
        verdict: dict[str, Any] = {}
        if error is None and reply is not None:
            try:
                verdict = _verdict(request, reply)
            except JudgeError as exc:
                error = exc
        elif error is None:
            raise ValueError("an item outcome needs a reply or an error")
        if error is not None:
            common["error_detail"] = self._error_detail(error, envelope, item.kind)
        if isinstance(request, LLMComparisonRequestV1):
            result = LLMComparisonResultV1(**common, **verdict)
        else:
            result = LLMRubricResultV1(**common, **verdict)
        callback = new_event(
            request.callback_topic,
            result,
            source_service=SERVICE_NAME,
            correlation_id=envelope.correlation_id,
            event_id=callback_event_id(request.request_id),
        )
        return BatchCallback(
            request.callback_topic,
            callback,
            answer_key(request, item.message_key),
            item,
            common["model"],
            error,
            suspected,
        )

    @staticmethod
    def _error_detail(error: JudgeError, envelope: EventEnvelope[Any], kind: str) -> ErrorDetail:
        operation = "compare_essays" if kind == COMPARISON else "score_rubric"
        return error.to_error_detail(
            correlation_id=envelope.correlation_id, service=SERVICE_NAME, operation=operation
        )


def _verdict(
    request: LLMComparisonRequestV1 | LLMRubricRequestV1, reply: ChatReply
) -> dict[str, Any]:
    """The answer fields of a result; raises MalformedAnswerError (no second ask in a batch)."""
    if isinstance(request, LLMComparisonRequestV1):
        comparison = parse_comparison_answer(reply.text)
        return {
            "winner": comparison.winner,
            "justification": comparison.justification,
            "confidence": comparison.confidence,
            "probability_essay_a_better": comparison_probability(reply, comparison),
        }
    rubric = parse_rubric_answer(reply.text)
    return {
        "scores": RubricScores(
            relevance=rubric.scores.relevance,
            depth=rubric.scores.depth,
            clarity=rubric.scores.clarity,
            technical=rubric.scores.technical,
        ),
        "overall": rubric.overall,
        "feedback": rubric.feedback,
        "citations": cited_passages(request, rubric.citations),
    }


def _usage(reply: ChatReply | None) -> TokenUsage:
    if reply is None:
        return TokenUsage()
    return TokenUsage(
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cached_prompt_tokens=reply.cached_prompt_tokens,
        cache_write_tokens=reply.cache_write_tokens,
    )


def _latency_ms(queued_at: datetime | None) -> int:
    if queued_at is None:
        return 0
    return max(0, int((datetime.now(UTC) - queued_at).total_seconds() * 1000))
