"""The rubric-result consumer: stores scores and announces them, one transaction per batch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common_core.events.llm import LLMRubricResultV1
from common_core.runtime.kafka_consumer import (
    BatchHandler,
    ConsumedEvent,
    KafkaConsumerRunner,
    event_span,
)
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.logging import bound_log_context
from common_core.topics import Topic
from submission_service.application.ports import Transactions
from submission_service.application.scoring import RubricPolicy, record_rubric_result
from submission_service.config import SERVICE_NAME, Settings

CONSUMER_NAME = f"{SERVICE_NAME}.rubric_results"


def rubric_result_handler(transactions: Transactions, policy: RubricPolicy) -> BatchHandler:
    """A batch handler: claim each event, record it, commit once; offsets follow the commit."""

    async def handle(events: Sequence[ConsumedEvent[Any]]) -> None:
        async with transactions() as uow:
            for event in events:
                with (
                    bound_log_context(
                        correlation_id=event.envelope.correlation_id,
                        event_id=event.envelope.event_id,
                        request_id=event.envelope.data.request_id,
                    ),
                    event_span(event),
                ):
                    await record_rubric_result(
                        uow, event.envelope, consumer=CONSUMER_NAME, policy=policy
                    )

    return handle


def build_rubric_consumer(
    transactions: Transactions,
    policy: RubricPolicy,
    settings: Settings,
    producer: KafkaEventProducer,
) -> KafkaConsumerRunner:
    """The consumer of `LLMRubricResultV1` callbacks (group `submission_service.rubric_results`)."""
    return KafkaConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security=settings.kafka_security,
        group_id=CONSUMER_NAME,
        payloads={settings.topic(Topic.LLM_RUBRIC_RESULT): LLMRubricResultV1},
        handler=rubric_result_handler(transactions, policy),
        producer=producer,
        client_id=f"{SERVICE_NAME}-rubric-results",
        max_batch_size=settings.consumer_max_batch_size,
        max_attempts=settings.consumer_max_attempts,
        group_instance_id=None,
    )
