"""What a service needs before it starts: its database migrated and its topics created."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_security import check_kafka_access
from common_core.runtime.migrations import run_migrations
from common_core.runtime.settings import ServiceSettings


async def prepare_service_infrastructure(
    settings: ServiceSettings, versions_dir: Path, topics: Sequence[str]
) -> None:
    """Apply the service's migrations to its own database and create `topics` (both idempotent,
    safe from several instances starting at once). The Kafka connection is checked first, so a
    refused certificate or password stops the start with the setting to fix (`KafkaAccessError`)."""
    security = settings.kafka_security
    await check_kafka_access(settings.kafka_bootstrap_servers, security)
    await run_migrations(settings.service_database_url, [versions_dir])
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        topics,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
        security=security,
    )
