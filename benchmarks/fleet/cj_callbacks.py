"""`cj_callbacks`: how fast 1 and 2 CJ instances record comparison results.

The same workload for both: `BATCHES` batches of `ESSAYS` essays with every pair planned at once
(the budget is all pairs), one batch per partition of a callbacks topic with `PARTITIONS`
partitions (placed as `placement.py` explains), so two instances own three batches each. Once
the CJ processes' relays have published every request and the callback group has settled, the
benchmark publishes one answer per pair, keyed by the batch id as the LLM provider keys them
(the requests' `callback_key`),
while it holds the batches' row locks, and times from the release of the locks to the last
batch's completed event (so the publisher's pace, on a loaded machine slower than the CJ
service's, is not what is measured). No LLM provider runs: the CJ service alone sets the pace.
The 1-instance figure, measured first in the same run, is the reference; the 2-instance case
adds an instance to the running one (same topics and database, fresh batches).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from benchmarks.cj.service_batches import cpu_seconds
from benchmarks.fleet.fresh_case import FleetCase, fresh_case
from benchmarks.fleet.instances import ServiceInstances, metric_sum, wait_for_even_assignment
from benchmarks.fleet.placement import BatchOutcomes, cj_request, place_batches
from benchmarks.stack import BenchStack
from cj_assessment_service.adapters.tables import cj_batches, cj_pairs
from cj_assessment_service.config import Settings
from cj_assessment_service.entrypoints.consumers import CALLBACK_GROUP
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import ComparisonWinner, LLMComparisonResultV1
from common_core.runtime.database import create_engine
from common_core.runtime.kafka_producer import (
    KafkaEventProducer,
    OutgoingMessage,
    envelope_message,
)
from common_core.runtime.outbox import event_outbox
from common_core.testing.service_process import ServiceProcess

PARTITIONS = 6
BATCHES = PARTITIONS
ESSAYS = 80
INSTANCE_COUNTS = (1, 2)
UNREACHABLE_RELIABILITY = 0.99999


async def _pairs_after_relay(settings: Settings, batch_ids: list[UUID]) -> list[Any]:
    """Wait until the outbox is empty (every request published); the batches' pairs."""
    engine = create_engine(settings.service_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            deadline = time.monotonic() + 600
            while await connection.scalar(
                select(func.count())
                .select_from(event_outbox)
                .where(event_outbox.c.published_at.is_(None))
            ):
                if time.monotonic() > deadline:
                    raise RuntimeError("the CJ outbox was not drained in 600 s")
                await asyncio.sleep(0.5)
                await connection.rollback()  # a fresh snapshot for the next count
            return list(
                await connection.execute(
                    select(
                        cj_pairs.c.batch_id,
                        cj_pairs.c.request_id,
                        cj_pairs.c.essay_a,
                        cj_pairs.c.essay_b,
                    ).where(cj_pairs.c.batch_id.in_(batch_ids))
                )
            )
    finally:
        await engine.dispose()


def _callbacks(settings: Settings, pairs: list[Any]) -> list[OutgoingMessage]:
    topic = settings.callback_topic
    return [
        envelope_message(
            topic,
            EventEnvelope[LLMComparisonResultV1](
                event_type=topic,
                source_service="bench",
                correlation_id=uuid.uuid4(),
                data=LLMComparisonResultV1(
                    request_id=pair.request_id,
                    request_metadata={"batch_id": str(pair.batch_id)},
                    winner=ComparisonWinner.ESSAY_A
                    if pair.essay_a > pair.essay_b
                    else ComparisonWinner.ESSAY_B,
                    confidence=4,
                    provider="bench",
                    model="bench",
                ),
            ),
            str(pair.batch_id),  # the callback_key CJ sets: the provider keys the answer with it
        )
        for pair in pairs
    ]


async def _publish_behind_batch_locks(
    settings: Settings, batch_ids: list[UUID], messages: list[OutgoingMessage]
) -> tuple[float, float]:
    """Publish the callbacks while holding the batches' row locks, which every callback
    transaction takes first: the CJ instances fetch answers but record none until the last is
    on the topic, so the publisher's own pace is not measured. The seconds publishing took, and
    the monotonic time the locks were released."""
    engine = create_engine(settings.service_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(
                select(cj_batches.c.id).where(cj_batches.c.id.in_(batch_ids)).with_for_update()
            )
            async with KafkaEventProducer(
                settings.kafka_bootstrap_servers,
                client_id="bench",
                security=settings.kafka_security,
            ) as producer:
                started = time.monotonic()
                await producer.send_many(messages)
                published = time.monotonic() - started
            released = time.monotonic()
            await connection.rollback()
    finally:
        await engine.dispose()
    return published, released


async def _recorded(cj: ServiceProcess) -> float:
    return await metric_sum(cj, "huleedu_cj_callbacks_processed_total", outcome="recorded")


async def _measure(case: FleetCase, cjs: list[ServiceProcess], essays: int) -> dict[str, Any]:
    """Wait for the callback group to settle on the running instances, then time one workload
    (fresh batches)."""
    settings = case.cj_settings
    owned = await wait_for_even_assignment(
        cjs, group=CALLBACK_GROUP, topic=settings.callback_topic, partitions=PARTITIONS
    )
    all_pairs = essays * (essays - 1) // 2
    batches, _ = await place_batches(
        settings,
        PARTITIONS,
        lambda ref: cj_request(
            ref, essays, budget=all_pairs, target_reliability=UNREACHABLE_RELIABILITY
        ),
    )
    pairs = await _pairs_after_relay(settings, [b.batch_id for b in batches])
    if len(pairs) != BATCHES * all_pairs:
        raise RuntimeError(f"{len(pairs)} pairs planned, expected {BATCHES * all_pairs}")
    messages = _callbacks(settings, pairs)
    recorded_before = [await _recorded(cj) for cj in cjs]
    cpu_before = [cpu_seconds(cj.process.pid) or 0.0 for cj in cjs]
    load_before = os.getloadavg()[0]
    async with BatchOutcomes(settings) as outcomes:
        published, started = await _publish_behind_batch_locks(
            settings, [b.batch_id for b in batches], messages
        )
        completed, finished = await outcomes.completed([b.entity_ref for b in batches], 900)
    wall = finished - started
    cpu = [(cpu_seconds(cj.process.pid) or 0.0) - b for cj, b in zip(cjs, cpu_before, strict=True)]
    recorded = [
        await _recorded(cj) - before for cj, before in zip(cjs, recorded_before, strict=True)
    ]
    done = sum(e.system_metadata.resource_usage.completed_comparisons for e in completed.values())
    return {
        "cj_instances": len(cjs),
        "partitions_per_instance": owned,
        "batches": len(batches),
        "callbacks": len(messages),
        "completed_comparisons": done,
        "publish_seconds": round(published, 2),
        "wall_seconds": round(wall, 2),
        "callbacks_per_second": round(len(messages) / wall, 1),
        "recorded_per_instance": [int(r) for r in recorded],
        "cj_cpu_seconds": [round(c, 1) for c in cpu],
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


async def run(stack: BenchStack) -> dict[str, Any]:
    """1 CJ instance (the reference), then 2; BENCH_FLEET_CALLBACK_ESSAYS sets the essays per
    batch (default 80: 3,160 callbacks per batch)."""
    essays = int(os.environ.get("BENCH_FLEET_CALLBACK_ESSAYS", ESSAYS))
    cases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-cj-") as logs:
        async with (
            fresh_case(stack, "fleetcj", partitions=PARTITIONS) as fleet_case,
            ServiceInstances(
                "cj_assessment_service",
                env=fleet_case.cj_env,
                log_dir=Path(logs),
                ready_path="/healthz/ready",
            ) as instances,
        ):
            for count in INSTANCE_COUNTS:  # the second case adds an instance to the first
                case = await _measure(fleet_case, await instances.grow_to(count), essays)
                cases[str(count)] = case
                _print_case(case)
    reference = cases["1"]["callbacks_per_second"]
    cases["2"]["speedup"] = round(cases["2"]["callbacks_per_second"] / reference, 3)
    print(
        f"fleet cj_callbacks: 2 CJ instances record {cases['2']['speedup']:.2f}x the callbacks "
        f"per second of 1 instance (same run)",
        flush=True,
    )
    return {
        "essays_per_batch": essays,
        "partitions": PARTITIONS,
        "reference": "1 CJ instance, same run",
        "cases": cases,
    }


def _print_case(case: dict[str, Any]) -> None:
    print(
        f"fleet cj_callbacks: {case['cj_instances']} CJ instance(s): {case['callbacks']} "
        f"callbacks of {case['batches']} batches recorded in {case['wall_seconds']} s = "
        f"{case['callbacks_per_second']:,.0f}/s (publishing took {case['publish_seconds']} s); "
        f"recorded per instance {case['recorded_per_instance']} (partitions "
        f"{case['partitions_per_instance']}); CJ CPU s {case['cj_cpu_seconds']}; load "
        f"{case['load_average_1m_before']} -> {case['load_average_1m_after']}",
        flush=True,
    )
