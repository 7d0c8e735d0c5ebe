"""Test support: settings, request events, and a scripted LLM side answering comparison requests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from cj_assessment_service.application.ports import BatchRecord, RequestSettings
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.cj import (
    AnchorEssay,
    CJAssessmentRequestV1,
    EssayToProcess,
    HumanJudgingRequest,
)
from common_core.events.envelope import EventEnvelope, decode_event
from common_core.events.llm import (
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    TokenUsage,
)
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.topics import Topic

FAST = {
    "monitor_interval_seconds": 0.5,
    "stuck_batch_timeout_seconds": 3600.0,
    "partial_scoring_grace_seconds": 3600.0,
    # Tests count the requests a batch makes; the hedging tests turn hedges on themselves.
    "hedge_max_share": 0.0,
}


def unique_prefix() -> str:
    """A topic prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"


def make_settings(database_url: str, bootstrap: str, prefix: str, **overrides: Any) -> Settings:
    """Settings for an instance under test (fast monitor, long timeouts unless overridden)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "log_json": True,
        **FAST,
        **overrides,
    }
    return Settings(**values)


def batch_record(**changes: Any) -> BatchRecord:
    """A live batch row (3 essays, all 3 pairs asked, none answered), with `changes`."""
    now = datetime.now(UTC)
    batch = BatchRecord(
        id=uuid.uuid4(),
        entity_ref=f"ref-{uuid.uuid4().hex}",
        correlation_id=uuid.uuid4(),
        request_event_id=uuid.uuid4(),
        state=BatchState.WAITING_CALLBACKS,
        essay_count=3,
        budget=3,
        request_settings=RequestSettings(language="en"),
        created_at=now,
        updated_at=now,
        last_activity_at=now,
        planned=3,
        waves=1,
    )
    return replace(batch, **changes)


def essays(n: int, prefix: str = "e") -> list[EssayToProcess]:
    """n essays `e0..e{n-1}`; the judge below treats a higher number as a better essay."""
    return [
        EssayToProcess(essay_id=f"{prefix}{i}", text_content=f"essay {i} text") for i in range(n)
    ]


def request_envelope(
    settings: Settings,
    entity_ref: str,
    items: list[EssayToProcess],
    *,
    anchors: list[AnchorEssay] | None = None,
    max_comparisons: int | None = None,
    event_id: uuid.UUID | None = None,
    target_reliability: float | None = None,
    human_judging: HumanJudgingRequest | None = None,
) -> EventEnvelope[CJAssessmentRequestV1]:
    """A CJ request event."""
    return EventEnvelope[CJAssessmentRequestV1](
        event_id=event_id or uuid.uuid4(),
        event_type=settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
        source_service="test",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=entity_ref,
            essays_to_process=items,
            essay_instructions="Write about your summer.",
            anchors=anchors or [],
            max_comparisons=max_comparisons,
            target_reliability=target_reliability,
            human_judging=human_judging,
        ),
    )


def ability(essay_id: str) -> int:
    """The true quality the scripted judge uses: the number in the id."""
    return int("".join(ch for ch in essay_id if ch.isdigit()) or 0)


def verdict(request: LLMComparisonRequestV1) -> LLMComparisonResultV1:
    """The better essay (higher number) wins."""
    a_better = ability(request.essay_a.essay_id) > ability(request.essay_b.essay_id)
    return LLMComparisonResultV1(
        request_id=request.request_id,
        request_metadata=request.request_metadata,
        winner=ComparisonWinner.ESSAY_A if a_better else ComparisonWinner.ESSAY_B,
        justification="clearer argument",
        confidence=4,
        provider="heuristic",
        model="test",
        usage=TokenUsage(prompt_tokens=10, completion_tokens=2),
    )


def error_result(
    request: LLMComparisonRequestV1, *, retryable: bool = False
) -> LLMComparisonResultV1:
    """A provider error answer."""
    return LLMComparisonResultV1(
        request_id=request.request_id,
        request_metadata=request.request_metadata,
        error_detail=ErrorDetail(
            code=ErrorCode.PROVIDER_ERROR,
            message="provider failed",
            correlation_id=uuid.uuid4(),
            service="llm_provider_service",
            operation="compare",
            retryable=retryable,
        ),
        provider="heuristic",
        model="test",
    )


def result_envelope(
    settings: Settings,
    request: EventEnvelope[LLMComparisonRequestV1],
    result: LLMComparisonResultV1,
) -> EventEnvelope[LLMComparisonResultV1]:
    """The callback envelope for a request (same correlation id)."""
    return EventEnvelope[LLMComparisonResultV1](
        event_type=settings.callback_topic,
        source_service="llm_provider_service",
        correlation_id=request.correlation_id,
        data=result,
    )


Policy = Callable[[LLMComparisonRequestV1, int], LLMComparisonResultV1 | None]
"""Given a request and how many requests came before it, the answer (None: never answer)."""


@dataclass
class ScriptedJudge:
    """Plays the LLM provider: reads comparison requests and publishes results by a policy."""

    settings: Settings
    producer: KafkaEventProducer
    policy: Policy = lambda request, _index: verdict(request)
    copies: int = 1
    key_by_request: bool = False
    requests: list[EventEnvelope[LLMComparisonRequestV1]] = field(default_factory=list)
    answered: int = 0

    async def run(self) -> None:
        """Consume requests from the start of the topic until cancelled."""
        consumer = AIOKafkaConsumer(
            self.settings.topic(Topic.LLM_COMPARISON_REQUESTED),
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"judge-{uuid.uuid4().hex}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **self.settings.kafka_security.client_kwargs(),
        )
        await consumer.start()
        try:
            while True:
                fetched = await consumer.getmany(timeout_ms=200)
                for records in fetched.values():
                    for record in records:
                        assert record.value is not None
                        envelope = decode_event(record.value, LLMComparisonRequestV1)
                        index = len(self.requests)
                        self.requests.append(envelope)
                        result = self.policy(envelope.data, index)
                        if result is not None:
                            await self.answer(envelope, result)
        finally:
            await consumer.stop()

    async def answer(
        self, request: EventEnvelope[LLMComparisonRequestV1], result: LLMComparisonResultV1
    ) -> None:
        """Publish a result for a request (`copies` times)."""
        key = (
            str(request.data.request_id)
            if self.key_by_request
            else str(request.data.request_metadata.get("batch_id"))
        )
        for _ in range(self.copies):
            await self.producer.publish(
                request.data.callback_topic,
                result_envelope(self.settings, request, result),
                key=key,
            )
        self.answered += 1


@contextlib.asynccontextmanager
async def judging(
    settings: Settings,
    producer: KafkaEventProducer,
    policy: Policy | None = None,
    **options: Any,
) -> AsyncIterator[ScriptedJudge]:
    """Run a scripted judge in the background."""
    judge = ScriptedJudge(settings, producer, **options)
    if policy is not None:
        judge.policy = policy
    task = asyncio.create_task(judge.run())
    try:
        yield judge
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
