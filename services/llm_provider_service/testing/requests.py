"""Building and publishing request envelopes for the integration tests and the benchmark."""

from __future__ import annotations

import uuid
from typing import Any

from common_core.events.envelope import EventEnvelope
from common_core.events.llm import (
    ComparisonEssay,
    LLMComparisonRequestV1,
    LLMConfig,
    LLMMode,
    LLMProviderName,
    LLMRubricRequestV1,
)
from llm_provider_service.testing.sample_essays import DEVELOPED_ON_TOPIC, INSTRUCTIONS, ONE_LINE


def comparison_envelope(
    topic: str,
    callback_topic: str,
    *,
    metadata: dict[str, Any] | None = None,
    provider: LLMProviderName | None = None,
    mode: LLMMode | None = None,
    model: str | None = None,
    judge_rubric: str | None = None,
    essay_b: str = ONE_LINE,
) -> EventEnvelope[LLMComparisonRequestV1]:
    """A comparison request envelope with a fresh request id and correlation id."""
    return EventEnvelope[LLMComparisonRequestV1](
        event_type=topic,
        source_service="test",
        correlation_id=uuid.uuid4(),
        data=LLMComparisonRequestV1(
            request_id=uuid.uuid4(),
            essay_a=ComparisonEssay(essay_id="e1", text_content=DEVELOPED_ON_TOPIC),
            essay_b=ComparisonEssay(essay_id="e2", text_content=essay_b),
            essay_instructions=INSTRUCTIONS,
            judge_rubric=judge_rubric,
            llm_config=LLMConfig(provider=provider, model=model, mode=mode),
            callback_topic=callback_topic,
            request_metadata=metadata or {},
        ),
    )


def rubric_envelope(
    topic: str, callback_topic: str, *, metadata: dict[str, Any] | None = None
) -> EventEnvelope[LLMRubricRequestV1]:
    """A rubric request envelope."""
    return EventEnvelope[LLMRubricRequestV1](
        event_type=topic,
        source_service="test",
        correlation_id=uuid.uuid4(),
        data=LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text=DEVELOPED_ON_TOPIC,
            question_text=INSTRUCTIONS,
            rubric={"relevance": "answers the question"},
            callback_topic=callback_topic,
            request_metadata=metadata or {},
        ),
    )
