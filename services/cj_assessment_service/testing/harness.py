"""Running an in-process service instance against the real Kafka and PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from dishka import Provider

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.ports import BatchRecord
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.entrypoints.runtime import SERVICE
from common_core.events.envelope import EventEnvelope, decode_event
from common_core.runtime.kernel import ServiceRuntime, running_workers, service_runtime
from common_core.testing import eventually, read_topic
from common_core.topics import Topic

CJRuntime = ServiceRuntime[Settings]
"""A built CJ instance (the kernel's runtime with the CJ settings)."""


@contextlib.asynccontextmanager
async def running_service(settings: Settings, *overrides: Provider) -> AsyncIterator[CJRuntime]:
    """An instance with all its loops running in this event loop (`overrides` replace bindings
    of its container)."""
    async with service_runtime(SERVICE, settings, *overrides) as runtime, running_workers(runtime):
        yield runtime


async def submit(runtime: CJRuntime, envelope: EventEnvelope[Any]) -> None:
    """Publish a CJ request as the upstream would."""
    await runtime.producer.publish(
        runtime.settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
        envelope,
        key=envelope.data.entity_ref,
    )


async def newest_batch(runtime: CJRuntime, entity_ref: str) -> BatchRecord | None:
    """The newest batch of an upstream ref."""
    async with runtime.sessions() as session:
        return await PostgresUnitOfWork(session).batches.newest(entity_ref)


async def batch_in_state(
    runtime: CJRuntime, entity_ref: str, state: BatchState, *, timeout: float = 60.0
) -> BatchRecord:
    """Wait until the newest batch of `entity_ref` is in `state`; that batch."""
    batch = await eventually(
        lambda: newest_batch(runtime, entity_ref),
        until=lambda b: b is not None and b.state == state,
        timeout=timeout,
        what=f"batch {entity_ref} {state}",
    )
    assert batch is not None
    return batch


async def outcome_events(
    settings: Settings, model: type[Any], topic: Topic, *, expected: int, settle: float = 1.5
) -> list[EventEnvelope[Any]]:
    """Every event on an outcome topic (reading a little past `expected` to catch extras)."""
    records = await read_topic(
        settings.kafka_bootstrap_servers,
        settings.topic(topic),
        expected=expected,
        timeout=30.0,
        settle=settle,
    )
    return [decode_event(r.value, model) for r in records if r.value is not None]
