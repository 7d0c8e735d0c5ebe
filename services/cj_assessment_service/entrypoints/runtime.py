"""Composition of one service instance: container, consumers, outbox relay and monitor.

`__main__` serves this with hypercorn through `run_service`; tests and benchmarks run the same
workers in their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dishka import AsyncContainer, Provider
from quart import Quart
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from cj_assessment_service.application.ports import BatchTransactions, EssaySetTransactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.di import make_container
from cj_assessment_service.entrypoints.consumers import callback_consumer, request_consumer
from cj_assessment_service.entrypoints.http import create_app
from cj_assessment_service.entrypoints.periodic import BatchMonitor, EssaySetJanitor, TailHedger
from common_core.runtime.infrastructure import prepare_service_infrastructure
from common_core.runtime.kafka_consumer import KafkaConsumerRunner
from common_core.runtime.kafka_producer import KafkaEventProducer
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


async def prepare_infrastructure(settings: Settings) -> None:
    """Apply migrations and create the topics (idempotent, safe from several instances)."""
    await prepare_service_infrastructure(settings, VERSIONS_DIR, service_topics(settings))


async def _kafka_reachable(bootstrap_servers: str) -> None:
    host, _, port = bootstrap_servers.split(",", maxsplit=1)[0].strip().rpartition(":")
    _, writer = await asyncio.open_connection(host or "127.0.0.1", int(port))
    writer.close()
    await writer.wait_closed()


@dataclass
class ServiceRuntime:
    """The running parts of one instance."""

    settings: Settings
    container: AsyncContainer
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: KafkaEventProducer
    workflow: CJWorkflow
    requests: KafkaConsumerRunner
    callbacks: KafkaConsumerRunner
    relay: OutboxRelay
    monitor: BatchMonitor
    app: Quart
    janitor: EssaySetJanitor
    hedger: TailHedger

    def workers(self) -> list[Coroutine[Any, Any, None]]:
        """The background loops of the instance."""
        return [
            self.requests.run(),
            self.callbacks.run(),
            self.relay.run(),
            self.monitor.run(),
            self.janitor.run(),
            self.hedger.run(),
        ]

    def stop(self) -> None:
        """Ask every loop to finish."""
        self.requests.stop()
        self.callbacks.stop()
        self.relay.stop()
        self.monitor.stop()
        self.janitor.stop()
        self.hedger.stop()


@contextlib.asynccontextmanager
async def service_runtime(
    settings: Settings, *overrides: Provider
) -> AsyncIterator[ServiceRuntime]:
    """Build an instance's parts (migrations and topics first) from the container (`overrides`
    replace its bindings); close the container after."""
    await prepare_infrastructure(settings)
    container = make_container(settings, *overrides)
    try:
        engine = await container.get(AsyncEngine)
        sessions = await container.get(async_sessionmaker[AsyncSession])
        producer = await container.get(KafkaEventProducer)
        workflow = await container.get(CJWorkflow)
        transactions = await container.get(BatchTransactions)
        essay_set_transactions = await container.get(EssaySetTransactions)
        name = instance_client_id(SERVICE_NAME, settings)

        async def database_ready() -> None:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

        async def kafka_ready() -> None:
            await _kafka_reachable(settings.kafka_bootstrap_servers)

        yield ServiceRuntime(
            settings=settings,
            container=container,
            engine=engine,
            sessions=sessions,
            producer=producer,
            workflow=workflow,
            requests=request_consumer(settings, transactions, workflow, producer, name),
            callbacks=callback_consumer(settings, transactions, workflow, producer, name),
            relay=OutboxRelay(engine, producer, poll_interval_seconds=1.0),
            monitor=BatchMonitor(
                transactions, workflow, interval_seconds=settings.monitor_interval_seconds
            ),
            app=create_app(
                container,
                {"database": database_ready, "kafka": kafka_ready},
                max_body_bytes=settings.essay_set_max_bytes,
            ),
            janitor=EssaySetJanitor(
                essay_set_transactions,
                interval_seconds=settings.essay_set_cleanup_interval_seconds,
            ),
            hedger=TailHedger(
                transactions, workflow, interval_seconds=settings.hedge_check_interval_seconds
            ),
        )
    finally:
        await container.close()


@contextlib.asynccontextmanager
async def running_workers(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    """Run the instance's loops as tasks in this event loop (for tests and benchmarks)."""
    tasks = [asyncio.ensure_future(w) for w in runtime.workers()]
    try:
        yield runtime
    finally:
        runtime.stop()
        _, pending = await asyncio.wait(tasks, timeout=15)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
