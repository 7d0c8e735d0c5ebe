"""CJ batches placed on chosen partitions, and waiting for their completed events.

The CJ service keys each comparison request by its request id, so one batch's requests spread
over every partition of the requests topic and every LLM provider instance answers a share of
every batch; it sets each request's `callback_key` to the batch id, and the LLM provider keys the
answer with it, so all of a batch's callbacks are on one partition of the callbacks topic and one
CJ instance records all of them (the CJ's per-batch pacing memory relies on that). CJ instances
therefore share the callbacks of several batches, and share them evenly only when the batches
spread evenly over the partitions. The batch id is a random UUID chosen by the CJ service, so a
benchmark that sent its batches through Kafka would measure the luck of the hash as much as the
instances. (The LLM provider instances' shares no longer depend on placement; `llm_scaleout`
places its batches all the same, so its workload is the one of earlier runs.)

Here the batches are created in the benchmark process with the CJ service's own use case
(`CJWorkflow.handle_request`), on the CJ process's database: each batch is created in its own
transaction, kept open while its id lands on a partition that already has its batch, rolled back
when it does, and the chosen ones are committed together. The CJ processes' outbox relays then
publish their requests, and the benchmark times from that commit to the last completed event.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EssayToProcess,
)
from common_core.events.envelope import EventEnvelope
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kafka_consumer import decode_record, record_key
from common_core.topics import Topic

# Attempts per wanted batch before giving up (each attempt lands on a wanted partition with
# probability at least 1 / partitions).
_ATTEMPTS_PER_BATCH = 200


def partition_of(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner (murmur2, as Kafka's Java client) gives
    a message key."""
    return int(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def cj_request(
    entity_ref: str, essays: int, *, budget: int, target_reliability: float
) -> EventEnvelope[CJAssessmentRequestV1]:
    """A CJ request for `essays` short essays spending `budget` comparisons."""
    return EventEnvelope[CJAssessmentRequestV1](
        event_type="bench.cj_assessment.requested",
        source_service="bench",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=entity_ref,
            essays_to_process=[
                EssayToProcess(essay_id=f"e{i:04d}", text_content=f"essay {i} of {entity_ref}")
                for i in range(essays)
            ],
            max_comparisons=budget,
            target_reliability=target_reliability,
        ),
    )


@dataclass(frozen=True)
class PlacedBatch:
    """A committed batch and the partition its requests and callbacks use."""

    batch_id: UUID
    entity_ref: str
    partition: int


async def place_batches(
    settings: Settings,
    partitions: int,
    request: Callable[[str], EventEnvelope[CJAssessmentRequestV1]],
) -> tuple[list[PlacedBatch], float]:
    """One batch per partition (`request(entity_ref)` builds each), committed together; the
    batches (by partition) and the monotonic time just before their commits."""
    engine = create_engine(settings.service_database_url, pool_size=partitions + 1)
    sessions = create_session_factory(engine)
    workflow = CJWorkflow(settings)
    kept: dict[int, tuple[PlacedBatch, AsyncSession, PostgresUnitOfWork]] = {}
    try:
        for _ in range(_ATTEMPTS_PER_BATCH * partitions):
            if len(kept) == partitions:
                break
            entity_ref = f"fleet-{uuid.uuid4().hex[:12]}"
            session = sessions()
            uow = PostgresUnitOfWork(session)
            batch_id = await workflow.handle_request(uow, request(entity_ref))
            assert batch_id is not None, "a fresh entity_ref is never a duplicate"
            partition = partition_of(str(batch_id), partitions)
            if partition in kept:
                await uow.rollback()
                await session.close()
                continue
            kept[partition] = (PlacedBatch(batch_id, entity_ref, partition), session, uow)
        if len(kept) < partitions:
            raise RuntimeError(f"batches found for {len(kept)} of {partitions} partitions")
        committed_at = time.monotonic()
        for _, _, uow in kept.values():
            await uow.commit()
    finally:
        for _, session, _ in kept.values():
            await session.close()  # rolls back whatever was not committed
        await engine.dispose()
    return [kept[p][0] for p in sorted(kept)], committed_at


class BatchOutcomes:
    """Reads the CJ completed and failed topics (fresh topics, from their start), to wait for
    the terminal events of given batches."""

    def __init__(self, settings: Settings) -> None:
        self._completed = settings.topic(Topic.CJ_ASSESSMENT_COMPLETED)
        self._failed = settings.topic(Topic.CJ_ASSESSMENT_FAILED)
        self._consumer = AIOKafkaConsumer(
            self._completed,
            self._failed,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **settings.kafka_security.client_kwargs(),
        )

    async def __aenter__(self) -> BatchOutcomes:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def completed(
        self, entity_refs: Collection[str], timeout: float
    ) -> tuple[dict[str, CJAssessmentCompletedV1], float]:
        """The completed events of these batches and the monotonic time the last one arrived;
        raises when one of them failed or they do not all complete within `timeout` seconds."""
        wanted = set(entity_refs)
        found: dict[str, CJAssessmentCompletedV1] = {}
        last = time.monotonic()
        deadline = last + timeout
        while len(found) < len(wanted):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(found)} of {len(wanted)} batches completed in {timeout} s"
                )
            fetched = await self._consumer.getmany(timeout_ms=100)
            for records in fetched.values():
                for record in records:
                    if record.topic == self._failed and record_key(record) in wanted:
                        failure = decode_record(record, CJAssessmentFailedV1).envelope.data
                        detail = failure.error_detail
                        raise RuntimeError(f"batch {failure.entity_ref} failed: {detail.code}")
                    if record.topic != self._completed:
                        continue
                    event = decode_record(record, CJAssessmentCompletedV1).envelope.data
                    if event.entity_ref in wanted:
                        found[event.entity_ref] = event
                        last = time.monotonic()
        return found, last
