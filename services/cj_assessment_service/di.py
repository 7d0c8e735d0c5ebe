"""Dishka providers: APP scope (settings, engine, sessions, producer, workflow, the unit of work
factory) and a REQUEST-scoped read-only repository.

Who commits: the entrypoint, through a `BatchTransactions` unit of work it opens itself (an HTTP
route that changes a batch, a consumer handler, the monitor). The request-scoped repository never
commits: when its scope closes the session is closed and anything it did is rolled back, so a
failed or cancelled request can never commit half its work."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator

from dishka import AsyncContainer, Provider, Scope, from_context, make_async_container, provide
from quart_dishka import QuartProvider
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cj_assessment_service.adapters.postgres import (
    PostgresBatchRepository,
    repository_transaction,
)
from cj_assessment_service.application.ports import BatchRepository, BatchTransactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kafka_producer import KafkaEventProducer


def client_id(settings: Settings) -> str:
    """A Kafka client id naming this instance."""
    return f"{SERVICE_NAME}-{settings.instance_id or f'{socket.gethostname()}-{os.getpid()}'}"


class CJProvider(Provider):
    """Everything the CJ service's entrypoints need."""

    settings = from_context(provides=Settings, scope=Scope.APP)

    @provide(scope=Scope.APP)
    async def engine(self, settings: Settings) -> AsyncIterator[AsyncEngine]:
        """The database engine of this instance."""
        engine = create_engine(settings.service_database_url, pool_size=settings.database_pool_size)
        yield engine
        await engine.dispose()

    @provide(scope=Scope.APP)
    def sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        """Session factory."""
        return create_session_factory(engine)

    @provide(scope=Scope.APP)
    async def producer(self, settings: Settings) -> AsyncIterator[KafkaEventProducer]:
        """The idempotent producer (used by the outbox relay and dead-lettering)."""
        producer = KafkaEventProducer(
            settings.kafka_bootstrap_servers, client_id=client_id(settings)
        )
        await producer.start()
        yield producer
        await producer.stop()

    @provide(scope=Scope.APP)
    def workflow(self, settings: Settings) -> CJWorkflow:
        """The batch use cases."""
        return CJWorkflow(settings)

    @provide(scope=Scope.APP)
    def transactions(self, sessions: async_sessionmaker[AsyncSession]) -> BatchTransactions:
        """Units of work for the entrypoints that change batches."""
        return lambda: repository_transaction(sessions)

    @provide(scope=Scope.REQUEST, provides=BatchRepository)
    async def repository(
        self, sessions: async_sessionmaker[AsyncSession]
    ) -> AsyncIterator[BatchRepository]:
        """A read-only repository per HTTP request (rolled back when the request ends)."""
        async with sessions() as session:
            yield PostgresBatchRepository(session)


def make_container(settings: Settings) -> AsyncContainer:
    """The service container (nothing connects until a dependency is first asked for)."""
    return make_async_container(CJProvider(), QuartProvider(), context={Settings: settings})
