"""What a service needs before it starts: its database migrated and its topics created (or, on a
cluster that forbids creating them, checked)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog

from common_core.runtime.http import ReadinessCheck
from common_core.runtime.kafka_admin import (
    TopicVerifier,
    apply_topics,
    describe_topics,
    topic_problems,
)
from common_core.runtime.migrations import run_migrations
from common_core.runtime.settings import ServiceSettings, TopicsMode

log = structlog.get_logger(__name__)


async def prepare_service_infrastructure(
    settings: ServiceSettings, versions_dir: Path, topics: Sequence[str]
) -> None:
    """Apply the service's migrations to its own database and create `topics` (both idempotent,
    safe from several instances starting at once); in verify mode only report missing topics
    (readiness keeps failing on them, see `topic_readiness`)."""
    await run_migrations(settings.service_database_url, [versions_dir])
    specs = settings.topic_specs(topics)
    if settings.kafka_topics_mode is TopicsMode.CREATE:
        await apply_topics(settings.kafka_bootstrap_servers, specs)
        return
    problems = topic_problems(specs, await describe_topics(settings.kafka_bootstrap_servers))
    if problems:
        log.warning(
            "topics_not_ready",
            problems=problems,
            message="KAFKA_TOPICS_MODE=verify: create them (huleedu topics apply); "
            "the service is not ready until then",
        )


def topic_readiness(settings: ServiceSettings, topics: Sequence[str]) -> dict[str, ReadinessCheck]:
    """In verify mode, a `topics` readiness check of the service's topics; none otherwise."""
    if settings.kafka_topics_mode is not TopicsMode.VERIFY:
        return {}
    verifier = TopicVerifier(settings.kafka_bootstrap_servers, settings.topic_specs(topics))
    return {"topics": verifier.check}
