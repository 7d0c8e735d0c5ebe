"""Assembling the process: the app, the rubric-result consumer, the outbox relay, the dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import structlog
from dishka import AsyncContainer
from quart import Quart
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.infrastructure import prepare_service_infrastructure
from common_core.runtime.kafka_consumer import KafkaConsumerRunner
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.outbox import OutboxRelay
from common_core.topics import Topic, dlq_topic_name
from submission_service.application.ports import (
    DefinitionCatalog,
    HostResolver,
    UnitOfWork,
    WebhookSender,
)
from submission_service.application.reference import load_reference_material
from submission_service.application.webhooks import WebhookPolicy
from submission_service.config import Settings
from submission_service.di import make_container
from submission_service.entrypoints.consumers import build_rubric_consumer
from submission_service.entrypoints.http import create_app
from submission_service.entrypoints.periodic import CommittedDeliveryQueue, WebhookDispatcher

log = structlog.get_logger(__name__)

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "alembic" / "versions"
PRODUCED = (
    Topic.ASSESSMENT_RESPONSE_COMPLETED,
    Topic.LLM_RUBRIC_REQUESTED,
    Topic.ASSESSMENT_SCORED,
)
CONSUMED = (Topic.LLM_RUBRIC_RESULT,)


async def prepare_infrastructure(settings: Settings) -> None:
    """Apply migrations and create the topics the service uses (with their DLQs)."""
    names = [settings.topic(t) for t in (*PRODUCED, *CONSUMED)]
    names += [dlq_topic_name(settings.topic(t)) for t in CONSUMED]
    await prepare_service_infrastructure(settings, VERSIONS_DIR, names)


@dataclass
class SubmissionRuntime:
    """Everything one service process runs."""

    settings: Settings
    container: AsyncContainer
    app: Quart
    producer: KafkaEventProducer
    consumer: KafkaConsumerRunner
    relay: OutboxRelay
    dispatcher: WebhookDispatcher

    def workers(self) -> list[Awaitable[None]]:
        """The background coroutines beside the HTTP server."""
        return [self.consumer.run(), self.relay.run(), self.dispatcher.run()]

    def stop(self) -> None:
        """Ask every worker to finish."""
        self.consumer.stop()
        self.relay.stop()
        self.dispatcher.stop()

    async def close(self) -> None:
        """Release the container's resources (the producer and the engine among them)."""
        await self.container.close()


async def build_runtime(settings: Settings) -> SubmissionRuntime:
    """Build the container, app and workers; starts only the Kafka producer."""
    container = make_container(settings)
    engine = await container.get(AsyncEngine)
    producer = await container.get(KafkaEventProducer)  # started by its provider
    catalog = await container.get(DefinitionCatalog)
    async with container() as scope:
        transactions: UnitOfWork = await scope.get(UnitOfWork)
        async with transactions as stores:
            await load_reference_material(stores, catalog)

    async def database_ready() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def kafka_ready() -> None:
        host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        await writer.wait_closed()

    app = create_app(container, settings, {"database": database_ready, "kafka": kafka_ready})
    dispatcher = WebhookDispatcher(
        CommittedDeliveryQueue(container),
        await container.get(WebhookSender),
        await container.get(HostResolver),
        await container.get(WebhookPolicy),
        poll_interval_seconds=settings.webhook_poll_interval_seconds,
    )
    return SubmissionRuntime(
        settings=settings,
        container=container,
        app=app,
        producer=producer,
        consumer=build_rubric_consumer(container, settings, producer),
        relay=OutboxRelay(
            engine, producer, poll_interval_seconds=settings.outbox_poll_interval_seconds
        ),
        dispatcher=dispatcher,
    )
