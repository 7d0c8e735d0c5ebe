"""`callbacks` and `monitor`: the CJ service's workers on the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from benchmarks.stack import BenchStack, drop_database
from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.adapters.tables import cj_pairs
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.entrypoints.consumers import CALLBACK_GROUP, callback_handler
from cj_assessment_service.entrypoints.periodic import BatchMonitor
from cj_assessment_service.entrypoints.runtime import SERVICE
from common_core.events.cj import CJAssessmentRequestV1, EssayToProcess
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import ComparisonWinner, LLMComparisonResultV1
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kafka_consumer import ConsumedEvent, KafkaConsumerRunner, decode_record
from common_core.runtime.kafka_producer import KafkaEventProducer, envelope_message
from common_core.runtime.kernel import prepare_infrastructure
from common_core.runtime.startup_heap import freeze_startup_heap
from common_core.runtime.unit_of_work import SessionTransactions
from common_core.topics import Topic

# 200 essays: 19,900 pairs, all planned at once, so one batch receives N = 19,900 callbacks (the
# one-off final scoring and first-statement costs weigh little against the steady rate).
CALLBACK_ESSAYS = 200
STUCK_BATCHES = 1000


def _settings(stack: BenchStack, database: str, **overrides: Any) -> Settings:
    url = make_url(stack.postgres_server_url).set(database=database)
    return Settings(
        database_url=url.render_as_string(hide_password=False),
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        topic_prefix=f"bench{uuid.uuid4().hex[:10]}",
        log_level="WARNING",
        **overrides,
    )


def _request(settings: Settings, n: int) -> EventEnvelope[CJAssessmentRequestV1]:
    return EventEnvelope[CJAssessmentRequestV1](
        event_type=settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
        source_service="bench",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=f"bench-{uuid.uuid4().hex[:8]}",
            essays_to_process=[
                EssayToProcess(essay_id=f"e{i}", text_content=f"essay {i}") for i in range(n)
            ],
            max_comparisons=n * (n - 1) // 2,
        ),
    )


async def _bare_read(settings: Settings, topic: str, expected: int, *, decode: bool) -> float:
    """Messages/s of a plain aiokafka consumer reading the topic (first to last message); with
    `decode`, each message is also validated into its typed envelope as every worker must."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench-bare-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_poll_records=settings.callback_batch_size,
        **settings.kafka_security.client_kwargs(),
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while seen < expected:
            fetched = await consumer.getmany(
                timeout_ms=200, max_records=settings.callback_batch_size
            )
            for records in fetched.values():
                if records and not seen:
                    first = time.perf_counter()
                if decode:
                    for record in records:
                        decode_record(record, LLMComparisonResultV1)
                seen += len(records)
    finally:
        await consumer.stop()
    return expected / (time.perf_counter() - first)


async def callbacks_benchmark(stack: BenchStack) -> dict[str, Any]:
    """One callback worker recording N callbacks of one batch vs a bare consumer."""
    database = f"bench_cj_{uuid.uuid4().hex[:10]}"
    settings = _settings(stack, database)
    await prepare_infrastructure(SERVICE, settings)
    engine = create_engine(settings.service_database_url, pool_size=4)
    sessions = create_session_factory(engine)
    workflow = CJWorkflow(settings)
    try:
        async with SessionTransactions(sessions, PostgresUnitOfWork)() as uow:
            batch_id = await workflow.handle_request(uow, _request(settings, CALLBACK_ESSAYS))
        assert batch_id is not None
        async with sessions() as session:
            pairs = (
                await session.execute(
                    select(cj_pairs.c.request_id, cj_pairs.c.essay_a, cj_pairs.c.essay_b).where(
                        cj_pairs.c.batch_id == batch_id
                    )
                )
            ).all()
        total = len(pairs)
        topic = settings.callback_topic
        async with KafkaEventProducer(
            settings.kafka_bootstrap_servers, client_id="bench", security=settings.kafka_security
        ) as out:
            await out.send_many(
                [
                    envelope_message(
                        topic,
                        EventEnvelope[LLMComparisonResultV1](
                            event_type=topic,
                            source_service="bench",
                            correlation_id=uuid.uuid4(),
                            data=LLMComparisonResultV1(
                                request_id=pair.request_id,
                                request_metadata={"batch_id": str(batch_id)},
                                winner=ComparisonWinner.ESSAY_A
                                if pair.essay_a > pair.essay_b
                                else ComparisonWinner.ESSAY_B,
                                confidence=4,
                                provider="bench",
                                model="bench",
                            ),
                        ),
                        str(batch_id),
                    )
                    for pair in pairs
                ]
            )
            bare_rate = await _bare_read(settings, topic, total, decode=False)
            decode_rate = await _bare_read(settings, topic, total, decode=True)
            recorded = 0
            first = last = 0.0
            done = asyncio.Event()
            handle = callback_handler(SessionTransactions(sessions, PostgresUnitOfWork), workflow)

            async def timed(events: Sequence[ConsumedEvent[Any]]) -> None:
                nonlocal recorded, first, last
                if not first:
                    first = time.perf_counter()
                await handle(events)
                recorded += len(events)
                last = time.perf_counter()
                if recorded >= total:
                    done.set()

            freeze_startup_heap()  # as `run_service` does once the service has started
            runner = KafkaConsumerRunner(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                security=settings.kafka_security,
                group_id=f"{CALLBACK_GROUP}.bench",
                payloads={topic: LLMComparisonResultV1},
                handler=timed,
                producer=out,
                client_id="bench-worker",
                max_batch_size=settings.callback_batch_size,
                fetch_max_wait_ms=settings.callback_fetch_max_wait_ms,
            )
            task = asyncio.create_task(runner.run())
            await asyncio.wait_for(done.wait(), timeout=600)
            runner.stop()
            await task
        async with sessions() as session:
            batch = await PostgresUnitOfWork(session).batches.get(batch_id)
        assert batch is not None
        assert batch.completed == total
        assert batch.state.value == "COMPLETED"
        worker_rate = total / (last - first)
    finally:
        await engine.dispose()
        await drop_database(stack.postgres_server_url, database)
    ratio = worker_rate / bare_rate
    print(
        f"callbacks: {total} callbacks of one batch: worker {worker_rate:,.0f} msg/s "
        f"(recorded, committed, batch scored), bare aiokafka {bare_rate:,.0f} msg/s, "
        f"ratio {ratio:.2f} (target >= 0.5); for scale, the bare reader that only validates "
        f"each message reads {decode_rate:,.0f} msg/s (ratio {decode_rate / bare_rate:.2f})",
        flush=True,
    )
    return {
        "callbacks": total,
        "worker_messages_per_second": round(worker_rate, 1),
        "bare_consumer_messages_per_second": round(bare_rate, 1),
        "validating_reader_messages_per_second": round(decode_rate, 1),
        "ratio": round(ratio, 3),
        "validating_reader_ratio": round(decode_rate / bare_rate, 3),
        "target_ratio": 0.5,
    }


async def monitor_benchmark(stack: BenchStack) -> dict[str, Any]:
    """One monitor pass over 1000 stuck batches (failing the ones below the threshold)."""
    database = f"bench_cj_{uuid.uuid4().hex[:10]}"
    settings = _settings(
        stack, database, stuck_batch_timeout_seconds=60.0, monitor_batch_limit=STUCK_BATCHES
    )
    await prepare_infrastructure(SERVICE, settings)
    engine = create_engine(settings.service_database_url, pool_size=2)
    sessions = create_session_factory(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO cj_batches (id, entity_ref, correlation_id, request_event_id, "
                    "state, essay_count, budget, planned, completed, failed, waves, "
                    "request_settings, last_activity_at) "
                    "SELECT gen_random_uuid(), 'stuck-' || g, gen_random_uuid(), "
                    "gen_random_uuid(), 'WAITING_CALLBACKS', 10, 45, 45, "
                    "CASE WHEN g % 2 = 0 THEN 10 ELSE 0 END, 0, 1, '{}'::jsonb, "
                    "now() - interval '1 hour' FROM generate_series(1, :n) AS g"
                ),
                {"n": STUCK_BATCHES},
            )
        monitor = BatchMonitor(
            SessionTransactions(sessions, PostgresUnitOfWork),
            CJWorkflow(settings),
            interval_seconds=60,
        )
        start = time.perf_counter()
        report = await monitor.run_once()
        seconds = time.perf_counter() - start
        async with engine.connect() as connection:
            remaining = await connection.scalar(
                text("SELECT count(*) FROM cj_batches WHERE state = 'WAITING_CALLBACKS'")
            )
            staged = await connection.scalar(text("SELECT count(*) FROM event_outbox"))
    finally:
        await engine.dispose()
        await drop_database(stack.postgres_server_url, database)
    assert report.detected == STUCK_BATCHES
    assert remaining == 0
    assert staged == STUCK_BATCHES
    print(
        f"monitor: one pass over {STUCK_BATCHES} stuck batches (each failed, one failed event "
        f"staged per batch) took {seconds:.3f}s (target < 1s)",
        flush=True,
    )
    return {"stuck_batches": STUCK_BATCHES, "seconds": round(seconds, 4), "target_seconds": 1.0}
