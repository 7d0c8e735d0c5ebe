"""The CJ assessment service for the kernel (`common_core.runtime.kernel`): its topics,
migrations, HTTP app and workers (request and callback consumers, outbox relay, batch monitor,
essay-set and essay-text janitors, tail hedger)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.di import make_container
from cj_assessment_service.entrypoints.consumers import callback_consumer, request_consumer
from cj_assessment_service.entrypoints.http import create_app
from cj_assessment_service.entrypoints.periodic import (
    BatchMonitor,
    EssaySetJanitor,
    EssayTextJanitor,
    TailHedger,
)
from common_core.runtime.http_auth import api_token_verifier
from common_core.runtime.kernel import ServiceDefinition, ServiceParts, StandardParts
from common_core.runtime.outbox import OutboxRelay
from common_core.runtime.providers import instance_client_id
from common_core.topics import Topic, dlq_topic_name

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "alembic" / "versions"


def service_topics(settings: Settings) -> list[str]:
    """Every topic the service consumes or produces, with the dead-letter topics it may use."""
    consumed = [settings.topic(Topic.CJ_ASSESSMENT_REQUESTED), settings.callback_topic]
    produced = [
        settings.topic(Topic.LLM_COMPARISON_REQUESTED),
        settings.topic(Topic.CJ_ASSESSMENT_COMPLETED),
        settings.topic(Topic.CJ_ASSESSMENT_FAILED),
    ]
    return [*consumed, *produced, *(dlq_topic_name(t) for t in consumed)]


async def build(parts: StandardParts[Settings]) -> ServiceParts:
    """The app and the workers, from the container."""
    settings, container, producer = parts.settings, parts.container, parts.producer
    workflow = await container.get(CJWorkflow)
    transactions = await container.get(Transactions)
    name = instance_client_id(SERVICE_NAME, settings)
    return ServiceParts(
        app=create_app(
            container,
            parts.readiness,
            max_body_bytes=settings.essay_set_max_bytes,
            verifier=api_token_verifier(settings),
        ),
        workers={
            "requests": request_consumer(settings, transactions, workflow, producer, name),
            "callbacks": callback_consumer(settings, transactions, workflow, producer, name),
            "relay": OutboxRelay(
                parts.engine,
                producer,
                poll_interval_seconds=1.0,
                retention=timedelta(hours=settings.outbox_retention_hours),
            ),
            "monitor": BatchMonitor(
                transactions, workflow, interval_seconds=settings.monitor_interval_seconds
            ),
            "janitor": EssaySetJanitor(
                transactions, interval_seconds=settings.essay_set_cleanup_interval_seconds
            ),
            "text_janitor": EssayTextJanitor(
                transactions,
                retention_seconds=settings.essay_text_retention_seconds,
                interval_seconds=settings.essay_text_purge_interval_seconds,
                limit=settings.essay_text_purge_batches,
            ),
            "hedger": TailHedger(
                transactions, workflow, interval_seconds=settings.hedge_check_interval_seconds
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
    numeric=True,
)
