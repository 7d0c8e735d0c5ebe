"""The LLM provider service for the kernel (`common_core.runtime.kernel`): its topics,
migrations, HTTP app and workers (the request consumer, the batch-mode submission and poll
workers, the outbox relay)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import structlog

from common_core.runtime.http_auth import api_token_verifier
from common_core.runtime.kernel import ServiceDefinition, ServiceParts, StandardParts
from common_core.runtime.outbox import OutboxRelay
from common_core.topics import Topic, dlq_topic_name
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.batching import BatchIntake, BatchPoller, BatchSubmitter
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.di import make_container
from llm_provider_service.entrypoints.consumers import request_consumer
from llm_provider_service.entrypoints.http import create_app
from llm_provider_service.entrypoints.periodic import BatchPollWorker, BatchSubmissionWorker
from llm_provider_service.metrics import SPEND_ALERT_USD_PER_HOUR

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


async def build(parts: StandardParts[Settings]) -> ServiceParts:
    """The app and the workers, from the container."""
    settings, container, producer = parts.settings, parts.container, parts.producer
    tick = settings.llm_batch_tick_seconds
    log.info(
        "llm_provider_configured",
        default_provider=settings.default_provider.value,
        max_in_flight=settings.llm_max_in_flight,
    )
    SPEND_ALERT_USD_PER_HOUR.set(settings.llm_spend_alert_usd_per_hour or 0.0)
    return ServiceParts(
        app=create_app(container, parts.readiness, verifier=api_token_verifier(settings)),
        workers={
            "requests": request_consumer(
                settings,
                await container.get(RequestAnswerer),
                producer,
                await container.get(BatchIntake),
            ),
            "relay": OutboxRelay(
                parts.engine,
                producer,
                poll_interval_seconds=settings.outbox_poll_interval_seconds,
                retention=timedelta(hours=settings.outbox_retention_hours),
            ),
            "batch_submission": BatchSubmissionWorker(
                await container.get(BatchSubmitter), interval_seconds=tick
            ),
            "batch_polling": BatchPollWorker(
                await container.get(BatchPoller), interval_seconds=tick
            ),
        },
    )


SERVICE = ServiceDefinition(
    name=SERVICE_NAME,
    settings=Settings,
    versions_dir=VERSIONS_DIR,
    topics=service_topics,
    make_container=make_container,
    build=build,
    # In-flight provider calls get their grace, then the server its usual two seconds.
    graceful_timeout=lambda settings: settings.llm_shutdown_grace_seconds + 2.0,
)
