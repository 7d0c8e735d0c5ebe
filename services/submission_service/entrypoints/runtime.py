"""The submission service for the kernel (`common_core.runtime.kernel`): its topics, migrations,
HTTP app and workers (the rubric-result consumer, the outbox relay, the webhook dispatcher, the
retention purge)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import structlog

from common_core.runtime.kernel import ServiceDefinition, ServiceParts, StandardParts
from common_core.runtime.outbox import OutboxRelay
from common_core.topics import Topic, dlq_topic_name
from submission_service.application.data_lifecycle import LifecycleTransactions
from submission_service.application.ports import (
    DefinitionCatalog,
    HostResolver,
    Transactions,
    WebhookSender,
)
from submission_service.application.reference import load_reference_material
from submission_service.application.scoring import RubricPolicy
from submission_service.application.webhooks import WebhookPolicy
from submission_service.config import SERVICE_NAME, Settings
from submission_service.di import make_container
from submission_service.entrypoints.consumers import build_rubric_consumer
from submission_service.entrypoints.http import create_app
from submission_service.entrypoints.periodic import (
    AnswerTextPurge,
    CommittedDeliveryQueue,
    WebhookDispatcher,
)

log = structlog.get_logger(__name__)

VERSIONS_DIR = Path(__file__).resolve().parent.parent / "alembic" / "versions"
PRODUCED = (
    Topic.ASSESSMENT_RESPONSE_COMPLETED,
    Topic.LLM_RUBRIC_REQUESTED,
    Topic.ASSESSMENT_SCORED,
)
CONSUMED = (Topic.LLM_RUBRIC_RESULT,)


def service_topics(settings: Settings) -> list[str]:
    """The topics the service uses, with the dead-letter topics of those it consumes."""
    names = [settings.topic(t) for t in (*PRODUCED, *CONSUMED)]
    return [*names, *(dlq_topic_name(settings.topic(t)) for t in CONSUMED)]


async def build(parts: StandardParts[Settings]) -> ServiceParts:
    """Load the reference material, then the app and the workers, from the container."""
    settings, container, producer = parts.settings, parts.container, parts.producer
    catalog = await container.get(DefinitionCatalog)
    transactions = await container.get(Transactions)
    async with transactions() as uow:
        await load_reference_material(uow.reference, catalog)
    policy = await container.get(RubricPolicy)
    return ServiceParts(
        app=create_app(container, settings, parts.readiness),
        workers={
            "consumer": build_rubric_consumer(transactions, policy, settings, producer),
            "relay": OutboxRelay(
                parts.engine,
                producer,
                poll_interval_seconds=settings.outbox_poll_interval_seconds,
                retention=timedelta(hours=settings.outbox_retention_hours),
            ),
            "dispatcher": WebhookDispatcher(
                CommittedDeliveryQueue(transactions),
                await container.get(WebhookSender),
                await container.get(HostResolver),
                await container.get(WebhookPolicy),
                poll_interval_seconds=settings.webhook_poll_interval_seconds,
            ),
            "retention": AnswerTextPurge(
                await container.get(LifecycleTransactions),
                retention=timedelta(days=settings.answer_text_retention_days),
                batch_size=settings.retention_purge_batch_size,
                interval_seconds=settings.retention_purge_interval_seconds,
            ),
        },
    )


def warn_of_development_secrets(settings: Settings) -> None:
    """A start-up warning when JWT_SECRET is the development default."""
    if settings.uses_dev_jwt_secret:
        log.warning(
            "insecure_dev_jwt_secret",
            message="JWT_SECRET is the development default; set JWT_SECRET in any real deployment",
        )


SERVICE = ServiceDefinition(
    name=SERVICE_NAME,
    settings=Settings,
    versions_dir=VERSIONS_DIR,
    topics=service_topics,
    make_container=make_container,
    build=build,
    on_start=warn_of_development_secrets,
)
