"""What a service needs before it starts: its database migrated and its topics created (or, on a
cluster that forbids creating them, checked).

With DATABASE_MIGRATE_ON_START=false the service neither creates its database nor migrates it: an
operator runs `python -m <service> migrate` with the owner (DDL) role, and the service runs with
a role that has only DML rights on its tables (`python -m <service> grants ROLE` prints them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaError

from common_core.errors import HuleEduError, NotReadyError
from common_core.runtime.database import insufficient_privilege
from common_core.runtime.http import ReadinessCheck
from common_core.runtime.kafka_admin import (
    TopicCreationError,
    TopicVerifier,
    apply_topics,
    describe_topics,
    topic_problems,
)
from common_core.runtime.kafka_security import check_kafka_access
from common_core.runtime.migrations import run_migrations
from common_core.runtime.settings import ServiceSettings, TopicsMode

log = structlog.get_logger(__name__)


class MigrationPrivilegeError(HuleEduError):
    """The database role cannot create or migrate the service's database."""


async def prepare_service_infrastructure(
    settings: ServiceSettings, versions_dir: Path, topics: Sequence[str]
) -> None:
    """Apply the service's migrations to its own database and create `topics` (both idempotent,
    safe from several instances starting at once); in verify mode only report missing topics
    (readiness keeps failing on them and the workers wait for them: `topic_readiness`,
    `gated_workers`). The Kafka connection is checked first, so a refused certificate or password
    stops the start with the setting to fix (`KafkaAccessError`)."""
    security = settings.kafka_security
    await check_kafka_access(settings.kafka_bootstrap_servers, security)
    if settings.database_migrate_on_start:
        await migrate_service_database(settings, versions_dir)
    specs = settings.topic_specs(topics)
    if settings.kafka_topics_mode is TopicsMode.CREATE:
        try:
            applied = await apply_topics(settings.kafka_bootstrap_servers, specs, security=security)
        except TopicCreationError as error:
            raise TopicCreationError(
                f"{error}; on a cluster that forbids creating topics set KAFKA_TOPICS_MODE=verify "
                "and create them with `huleedu topics apply`"
            ) from None
        if applied.problems:
            log.warning("topics_too_small", problems=applied.problems)
        return
    existing = await describe_topics(settings.kafka_bootstrap_servers, security=security)
    problems = topic_problems(specs, existing)
    if problems:
        log.warning(
            "topics_not_ready",
            problems=problems,
            message="KAFKA_TOPICS_MODE=verify: create them (huleedu topics apply); "
            "the service is not ready until then",
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


def topic_verifier(settings: ServiceSettings, topics: Sequence[str]) -> TopicVerifier | None:
    """In verify mode, the check of the service's topics; None when the service creates them."""
    if settings.kafka_topics_mode is not TopicsMode.VERIFY:
        return None
    return TopicVerifier(
        settings.kafka_bootstrap_servers,
        settings.topic_specs(topics),
        security=settings.kafka_security,
    )


def topic_readiness(verifier: TopicVerifier | None) -> dict[str, ReadinessCheck]:
    """The `topics` readiness check in verify mode; none otherwise."""
    return {} if verifier is None else {"topics": verifier.check}


class _Worker(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


W = TypeVar("W", bound=_Worker)


class TopicGate:
    """A worker that starts its inner worker only once the topics pass their check (verify
    mode). A consumer subscribed to a topic that does not exist yet would pick it up only at its
    next metadata refresh (minutes later), and on a broker that allows auto-creation would make
    it create the topic with the broker's defaults; a relay would do the same by publishing."""

    def __init__(
        self,
        worker: _Worker,
        check: Callable[[], Awaitable[None]],
        *,
        name: str,
        interval_seconds: float = 5.0,
    ) -> None:
        self.worker = worker
        self._check = check
        self._name = name
        self._interval_seconds = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop waiting, and the inner worker if it runs."""
        self._stopping.set()
        self.worker.stop()

    async def run(self) -> None:
        """Wait for the topics (or `stop`), then run the inner worker."""
        waited = False
        while not await self._topics_ready():
            if not waited:
                log.info("worker_waiting_for_topics", worker=self._name)
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_seconds)
            if self._stopping.is_set():
                return
        if not self._stopping.is_set():
            await self.worker.run()

    async def _topics_ready(self) -> bool:
        try:
            await self._check()
        except (NotReadyError, KafkaError, OSError, TimeoutError):
            return False
        return True


def gated_workers(
    workers: Mapping[str, W], verifier: TopicVerifier | None
) -> Mapping[str, W | TopicGate]:
    """In verify mode, each worker behind a `TopicGate` on the topics' check; else as given."""
    if verifier is None:
        return workers
    return {name: TopicGate(w, verifier.check, name=name) for name, w in workers.items()}
