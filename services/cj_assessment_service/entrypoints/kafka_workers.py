"""Kafka consumers of the CJ service: assessment requests and comparison callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cj_assessment_service.adapters.postgres_repository import repository_transaction
from cj_assessment_service.application.batch_workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from common_core.events.cj import CJAssessmentRequestV1
from common_core.events.llm import LLMComparisonResultV1
from common_core.runtime.kafka_consumer import BatchHandler, ConsumedEvent, KafkaConsumerRunner
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.logging import bound_log_context
from common_core.topics import Topic

log = structlog.get_logger(__name__)

REQUEST_GROUP = SERVICE_NAME
CALLBACK_GROUP = f"{SERVICE_NAME}.callbacks"


def request_consumer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    workflow: CJWorkflow,
    producer: KafkaEventProducer,
    client_id: str,
) -> KafkaConsumerRunner:
    """Consumes CJ assessment requests; one transaction per request."""

    async def handle(events: Sequence[ConsumedEvent[Any]]) -> None:
        for event in events:
            envelope = event.envelope
            with bound_log_context(
                correlation_id=envelope.correlation_id,
                event_id=envelope.event_id,
                entity_ref=envelope.data.entity_ref,
            ):
                async with repository_transaction(sessions) as repo:
                    await workflow.handle_request(repo, envelope)

    return KafkaConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=REQUEST_GROUP,
        payloads={settings.topic(Topic.CJ_ASSESSMENT_REQUESTED): CJAssessmentRequestV1},
        handler=handle,
        producer=producer,
        client_id=f"{client_id}-requests",
        max_batch_size=20,
    )


def callback_handler(
    sessions: async_sessionmaker[AsyncSession], workflow: CJWorkflow
) -> BatchHandler:
    """The handler recording one fetched batch of callbacks in one transaction."""

    async def handle(events: Sequence[ConsumedEvent[Any]]) -> None:
        async with repository_transaction(sessions) as repo:
            report = await workflow.record_results(repo, [e.envelope.data for e in events])
        if report.orphans:
            log.warning("cj_orphan_callbacks", count=report.orphans)

    return handle


def callback_consumer(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    workflow: CJWorkflow,
    producer: KafkaEventProducer,
    client_id: str,
) -> KafkaConsumerRunner:
    """Consumes comparison results; one transaction per fetched batch of messages."""
    return KafkaConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=CALLBACK_GROUP,
        payloads={settings.callback_topic: LLMComparisonResultV1},
        handler=callback_handler(sessions, workflow),
        producer=producer,
        client_id=f"{client_id}-callbacks",
        max_batch_size=settings.callback_batch_size,
        fetch_max_wait_ms=settings.callback_fetch_max_wait_ms,
    )
