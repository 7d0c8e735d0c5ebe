"""Topic provisioning: services create the topics they use at start-up, so nothing relies on
broker-side auto-creation (which would give one partition and defeat consumer groups)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = structlog.get_logger(__name__)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="huleedu-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        with contextlib.suppress(TopicAlreadyExistsError):  # another instance was first
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
                    for t in missing
                ]
            )
        log.info("topics_created", topics=missing, partitions=partitions)
    finally:
        await admin.close()
