"""Composition of one service instance: topics, container, the request worker and the HTTP app.

`__main__` serves it with hypercorn through `run_service`; the worker is built here from what the
container provides (settings, answerer, producer), so `di.py` needs no entrypoint.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import structlog
from dishka import AsyncContainer, Provider
from quart import Quart

from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.service_process import run_service
from common_core.topics import Topic, dlq_topic_name
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.config import Settings
from llm_provider_service.di import make_container
from llm_provider_service.entrypoints.consumers import RequestWorker
from llm_provider_service.entrypoints.http import create_app

log = structlog.get_logger(__name__)

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
    """Create the topics (idempotent, safe from several instances)."""
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        service_topics(settings),
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )


@dataclass
class ServiceRuntime:
    """The running parts of one instance."""

    settings: Settings
    container: AsyncContainer
    worker: RequestWorker
    app: Quart

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        """The background loops of the instance."""
        return [self.worker.run()]

    def stop(self) -> None:
        """Ask every loop to finish."""
        self.worker.stop()


@contextlib.asynccontextmanager
async def service_runtime(
    settings: Settings, *overrides: Provider
) -> AsyncIterator[ServiceRuntime]:
    """Build an instance's parts (topics first); close the container after."""
    await prepare_infrastructure(settings)
    container = make_container(settings, *overrides)
    try:
        worker = RequestWorker(
            settings,
            await container.get(RequestAnswerer),
            await container.get(KafkaEventProducer),
        )
        yield ServiceRuntime(
            settings=settings,
            container=container,
            worker=worker,
            app=create_app(container, {"kafka": worker.check_kafka}),
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
