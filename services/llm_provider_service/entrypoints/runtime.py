"""Composition of one service instance: topics, container, the request worker and the HTTP app."""

from __future__ import annotations

import structlog

from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.service_process import run_service
from common_core.topics import Topic, dlq_topic_name
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


async def run(settings: Settings) -> None:
    """Provision topics, wire the container, serve until SIGTERM."""
    names = [settings.topic(t) for t in _OWN_TOPICS]
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [*names, *(dlq_topic_name(n) for n in names)],
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )
    container = make_container(settings)
    try:
        worker = await container.get(RequestWorker)
        log.info(
            "llm_provider_configured",
            default_provider=settings.default_provider.value,
            max_in_flight=settings.llm_max_in_flight,
        )
        await run_service(
            create_app(container),
            host=settings.http_host,
            port=settings.http_port,
            workers=[worker.run()],
            stop_workers=worker.stop,
            graceful_timeout=settings.llm_shutdown_grace_seconds + 2.0,
        )
    finally:
        await container.close()
