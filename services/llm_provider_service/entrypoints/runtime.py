"""Composition of one service instance: migrations, topics, container, the request worker, the
batch-mode workers, the outbox relay and the HTTP app.

`__main__` serves it with hypercorn through `run_service`; the workers are built here from what
the container provides (settings, answerer, producer, batch use cases), so `di.py` needs no
entrypoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from dishka import AsyncContainer, Provider
from quart import Quart
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.infrastructure import prepare_service_infrastructure
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.outbox import OutboxRelay
from common_core.runtime.service_process import run_service
from common_core.topics import Topic, dlq_topic_name
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.batching import BatchIntake, BatchPoller, BatchSubmitter
from llm_provider_service.config import Settings
from llm_provider_service.di import make_container
from llm_provider_service.entrypoints.consumers import RequestWorker
from llm_provider_service.entrypoints.http import create_app
from llm_provider_service.entrypoints.periodic import BatchPollWorker, BatchSubmissionWorker

log = structlog.get_logger(__name__)

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "alembic" / "versions"

_OWN_TOPICS = (
    Topic.LLM_COMPARISON_REQUESTED,
    Topic.LLM_RUBRIC_REQUESTED,
    Topic.LLM_COMPARISON_RESULT,
    Topic.LLM_RUBRIC_RESULT,
)


def service_topics(settings: Settings) -> list[str]:
    """Every topic the service consumes or produces, with their dead-letter topics."""
    names = [settings.topic(t) for t in _OWN_TOPICS]
    return [*names, *(dlq_topic_name(n) for n in names)]


async def prepare_infrastructure(settings: Settings) -> None:
    """Apply migrations and create the topics (idempotent, safe from several instances)."""
    await prepare_service_infrastructure(settings, VERSIONS_DIR, service_topics(settings))


@dataclass
class ServiceRuntime:
    """The running parts of one instance."""

    settings: Settings
    container: AsyncContainer
    worker: RequestWorker
    app: Quart
    relay: OutboxRelay
    submission: BatchSubmissionWorker
    polling: BatchPollWorker

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        """The background loops of the instance."""
        return [self.worker.run(), self.relay.run(), self.submission.run(), self.polling.run()]

    def stop(self) -> None:
        """Ask every loop to finish."""
        self.worker.stop()
        self.relay.stop()
        self.submission.stop()
        self.polling.stop()


@contextlib.asynccontextmanager
async def service_runtime(
    settings: Settings, *overrides: Provider
) -> AsyncIterator[ServiceRuntime]:
    """Build an instance's parts (topics first); close the container after."""
    await prepare_infrastructure(settings)
    container = make_container(settings, *overrides)
    try:
        producer = await container.get(KafkaEventProducer)
        engine = await container.get(AsyncEngine)
        worker = RequestWorker(
            settings,
            await container.get(RequestAnswerer),
            producer,
            await container.get(BatchIntake),
        )

        async def database_ready() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        tick = settings.llm_batch_tick_seconds
        yield ServiceRuntime(
            settings=settings,
            container=container,
            worker=worker,
            app=create_app(container, {"kafka": worker.check_kafka, "database": database_ready}),
            relay=OutboxRelay(
                engine, producer, poll_interval_seconds=settings.outbox_poll_interval_seconds
            ),
            submission=BatchSubmissionWorker(
                await container.get(BatchSubmitter), interval_seconds=tick
            ),
            polling=BatchPollWorker(await container.get(BatchPoller), interval_seconds=tick),
        )
    finally:
        await container.close()


async def run(settings: Settings) -> None:
    """Provision topics, wire the container, serve until SIGTERM."""
    async with service_runtime(settings) as runtime:
        log.info(
            "llm_provider_configured",
            default_provider=settings.default_provider.value,
            max_in_flight=settings.llm_max_in_flight,
        )
        await run_service(
            runtime.app,
            host=settings.http_host,
            port=settings.http_port,
            workers=runtime.workers(),
            stop_workers=runtime.stop,
            graceful_timeout=settings.llm_shutdown_grace_seconds + 2.0,
        )
