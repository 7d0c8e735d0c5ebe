"""The dishka providers every service with a database or a producer shares (APP scope).

A service's `di.py` adds them to its container next to its own provider:
`make_async_container(DatabaseProvider(settings), ProducerProvider(settings, SERVICE_NAME), ...)`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Literal

from dishka import Provider, Scope, provide
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common_core.runtime.compute import ComputePool
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.settings import ServiceSettings


def instance_client_id(service_name: str, settings: ServiceSettings) -> str:
    """A Kafka client id naming this instance: `INSTANCE_ID`, else host and process id."""
    return f"{service_name}-{settings.instance_id or f'{socket.gethostname()}-{os.getpid()}'}"


class DatabaseProvider(Provider):
    """The engine of the service's own database and its session factory."""

    scope = Scope.APP

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__()
        self._settings = settings

    @provide
    async def engine(self) -> AsyncIterator[AsyncEngine]:
        """The engine (pre-ping, hidden parameters), disposed when the container closes."""
        engine = create_engine(
            self._settings.service_database_url,
            pool_size=self._settings.database_pool_size,
            tls=self._settings.database_tls,
        )
        yield engine
        await engine.dispose()

    @provide
    def sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        """Sessions on the engine; each unit of work opens one."""
        return create_session_factory(engine)


class ProducerProvider(Provider):
    """The idempotent, acks=all Kafka producer of this instance (the outbox relay, callbacks,
    dead letters)."""

    scope = Scope.APP

    def __init__(
        self,
        settings: ServiceSettings,
        service_name: str,
        *,
        compression_type: Literal["gzip"] | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._client_id = instance_client_id(service_name, settings)
        self._compression_type = compression_type

    @provide
    async def producer(self) -> AsyncIterator[KafkaEventProducer]:
        """Started on first use, stopped when the container closes."""
        producer = KafkaEventProducer(
            self._settings.kafka_bootstrap_servers,
            client_id=self._client_id,
            security=self._settings.kafka_security,
            compression_type=self._compression_type,
        )
        await producer.start()
        try:
            yield producer
        finally:
            await producer.stop()


class ComputeProvider(Provider):
    """The instance's pool for CPU-heavy work (`COMPUTE_WORKERS` threads), closed with the
    container."""

    scope = Scope.APP

    def __init__(self, settings: ServiceSettings) -> None:
        super().__init__()
        self._settings = settings

    @provide
    def compute(self) -> Iterator[ComputePool]:
        """Threads start on first use and stop when the container closes."""
        pool = ComputePool(self._settings.compute_workers)
        try:
            yield pool
        finally:
            pool.close()
