"""Topic provisioning: services create the topics they use at start-up, so nothing relies on
broker-side auto-creation (which would give one partition and defeat consumer groups)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from common_core.runtime.kafka_security import PLAINTEXT, KafkaAccessError, KafkaSecurity

log = structlog.get_logger(__name__)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are. Topics the
    broker's ACLs forbid creating raise `KafkaAccessError`."""
    wanted = sorted(set(topics))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="huleedu-admin", **security.client_kwargs()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(t, num_partitions=partitions, replication_factor=replication_factor)
                for t in missing
            ]
        )
        refused = sorted(
            error[0]
            for error in response.topic_errors
            if for_code(error[1])
            in (TopicAuthorizationFailedError, ClusterAuthorizationFailedError)
        )
        if refused:
            raise KafkaAccessError(
                security.principal_setting,
                f"{security.principal} may not create the topics {', '.join(refused)}: the "
                "broker's ACLs lack CREATE (and DESCRIBE) on them",
            )
        # Another instance may have been first: an existing topic is what was wanted.
        failed = [
            (error[0], for_code(error[1]).__name__)
            for error in response.topic_errors
            if error[1] != 0 and for_code(error[1]) is not TopicAlreadyExistsError
        ]
        if failed:
            log.warning("topics_not_created", topics=failed)
        not_created = {name for name, _ in failed}
        created = [t for t in missing if t not in not_created]
        log.info("topics_created", topics=created, partitions=partitions)
    finally:
        await admin.close()
