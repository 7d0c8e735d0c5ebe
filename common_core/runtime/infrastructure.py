"""What a service needs before it starts: its database migrated and its topics created.

With DATABASE_MIGRATE_ON_START=false the service neither creates its database nor migrates it: an
operator runs `python -m <service> migrate` with the owner (DDL) role, and the service runs with
a role that has only DML rights on its tables (`python -m <service> grants ROLE` prints them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common_core.errors import HuleEduError
from common_core.runtime.database import insufficient_privilege
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.migrations import run_migrations
from common_core.runtime.settings import ServiceSettings


class MigrationPrivilegeError(HuleEduError):
    """The database role cannot create or migrate the service's database."""


async def prepare_service_infrastructure(
    settings: ServiceSettings, versions_dir: Path, topics: Sequence[str]
) -> None:
    """Apply the service's migrations to its own database and create `topics` (both idempotent,
    safe from several instances starting at once)."""
    if settings.database_migrate_on_start:
        await migrate_service_database(settings, versions_dir)
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        topics,
        partitions=settings.topic_partitions,
        replication_factor=settings.topic_replication_factor,
    )


async def migrate_service_database(settings: ServiceSettings, versions_dir: Path) -> None:
    """Create the service's database if missing and apply its migrations (needs the owner role:
    CREATEDB, or an existing database, and DDL rights on it)."""
    try:
        await run_migrations(
            settings.service_database_url, [versions_dir], tls=settings.database_tls
        )
    except Exception as error:
        denied = insufficient_privilege(error)
        if denied is None:
            raise
        raise MigrationPrivilegeError(
            f"the database role may not create or migrate the service's database ({denied}): "
            "run `python -m <service> migrate` with the owner role and start the service with "
            "DATABASE_MIGRATE_ON_START=false"
        ) from None
