"""Callback processing: idempotence, concurrency, orphans, errors and retries."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from cj_assessment_service.adapters.tables import cj_batches, cj_pairs
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    CJRuntime,
    batch_in_state,
    newest_batch,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    error_result,
    essays,
    judging,
    make_settings,
    request_envelope,
    result_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentCompletedV1, CJAssessmentFailedV1
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import (
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
)
from common_core.runtime.kafka_consumer import KafkaConsumerRunner
from common_core.runtime.kafka_producer import OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import Topic, dlq_topic_name

pytestmark = pytest.mark.integration


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _snapshot(service: CJRuntime) -> list[tuple[object, ...]]:
    async with service.sessions() as session:
        batches = (await session.execute(select(cj_batches).order_by(cj_batches.c.id))).all()
        pairs = (await session.execute(select(cj_pairs).order_by(cj_pairs.c.id))).all()
    return [tuple(r) for r in batches] + [tuple(r) for r in pairs]


class TestIdempotence:
    async def test_callback_with_unknown_request_id_is_acked_counted_and_changes_nothing(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service, judging(settings, service.producer):
            await submit(service, request_envelope(settings, "orphan-ref", essays(3)))
            await batch_in_state(service, "orphan-ref", BatchState.COMPLETED)
            before_rows = await _snapshot(service)
            before = _metric("huleedu_cj_orphan_callbacks_total")
            orphan = LLMComparisonResultV1(
                request_id=uuid.uuid4(),
                winner=ComparisonWinner.ESSAY_A,
                confidence=3,
                provider="heuristic",
                model="test",
            )
            await service.producer.publish(
                settings.callback_topic,
                EventEnvelope[LLMComparisonResultV1](
                    event_type=settings.callback_topic,
                    source_service="llm_provider_service",
                    correlation_id=uuid.uuid4(),
                    data=orphan,
                ),
                key="nobody",
            )
            await eventually(
                lambda: asyncio.sleep(0, _metric("huleedu_cj_orphan_callbacks_total")),
                until=lambda v: v == before + 1,
                timeout=30,
                what="orphan metric incremented",
            )
            assert await _snapshot(service) == before_rows
            # Acknowledged: the committed offsets move past the orphan, so nothing redelivers it.
            consumer = service.worker("callbacks", KafkaConsumerRunner).consumer

            async def committed_total() -> int:
                offsets = [await consumer.committed(tp) for tp in consumer.assignment()]
                return sum(o or 0 for o in offsets)

            await eventually(committed_total, until=lambda total: total == 3 + 1)

    async def test_the_same_callback_twice_is_counted_once(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, copies=2) as judge,
        ):
            await submit(service, request_envelope(settings, "dup-callbacks", essays(6)))
            await batch_in_state(service, "dup-callbacks", BatchState.COMPLETED)
            batch = await newest_batch(service, "dup-callbacks")
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert batch is not None
        assert judge.answered == 15
        assert (batch.completed, batch.failed, batch.planned) == (15, 0, 15)
        assert len(events) == 1
        assert all(r.comparisons == 5 for r in events[0].data.rankings)


class TestConcurrency:
    async def test_one_hundred_concurrent_callbacks_are_counted_exactly_once_each(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy=lambda _r, _i: None) as judge,
        ):
            await submit(
                service, request_envelope(settings, "concurrent", essays(15), max_comparisons=105)
            )
            await eventually(
                lambda: asyncio.sleep(0, len(judge.requests)), until=lambda n: n == 105
            )
            results = [verdict(r.data) for r in judge.requests]

            workflow = await service.container.get(CJWorkflow)
            transactions = await service.container.get(Transactions)

            async def record(result: LLMComparisonResultV1) -> None:
                async with transactions() as uow:
                    await workflow.record_results(uow, [result])

            # 100 distinct callbacks, each delivered twice, all in flight at once.
            await asyncio.gather(*(record(r) for r in results[:100] * 2))
            batch = await newest_batch(service, "concurrent")
            assert batch is not None
            assert (batch.completed, batch.state) == (100, BatchState.WAITING_CALLBACKS)
            # The last five arrive through Kafka, concurrently, on several partitions.
            await asyncio.gather(
                *(
                    service.producer.publish(
                        settings.callback_topic,
                        result_envelope(settings, request, verdict(request.data)),
                        key=str(request.data.request_id),
                    )
                    for request in judge.requests[100:]
                )
            )
            await batch_in_state(service, "concurrent", BatchState.COMPLETED, timeout=30)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
            batch = await newest_batch(service, "concurrent")
        assert batch is not None
        assert batch.completed == 105
        assert len(events) == 1


class TestErrors:
    async def test_half_the_comparisons_failing_fails_the_batch_with_one_failed_event(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url, kafka_bootstrap_servers, unique_prefix(), min_success_rate_threshold=0.8
        )

        def half_errors(request: LLMComparisonRequestV1, index: int) -> LLMComparisonResultV1:
            return error_result(request) if index % 2 == 0 else verdict(request)

        async with (
            running_service(settings) as service,
            judging(settings, service.producer, half_errors),
        ):
            await submit(service, request_envelope(settings, "half-errors", essays(10)))
            await batch_in_state(service, "half-errors", BatchState.FAILED)
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=1
            )
            completed = await outcome_events(
                settings,
                CJAssessmentCompletedV1,
                Topic.CJ_ASSESSMENT_COMPLETED,
                expected=0,
                settle=0.5,
            )
            batch = await newest_batch(service, "half-errors")
        assert batch is not None
        assert (batch.completed, batch.failed) == (22, 23)
        assert len(failed) == 1
        assert failed[0].data.error_detail.code == "low_success_rate"
        assert failed[0].data.entity_ref == "half-errors"
        assert completed == []

    async def test_retryable_errors_are_requested_again_under_a_new_request_id(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url, kafka_bootstrap_servers, unique_prefix(), max_retries_per_pair=2
        )
        seen: set[str] = set()

        def fail_first_attempt(
            request: LLMComparisonRequestV1, _index: int
        ) -> LLMComparisonResultV1:
            pair = request.request_metadata["pair_id"]
            if pair in seen:
                return verdict(request)
            seen.add(pair)
            return error_result(request, retryable=True)

        async with (
            running_service(settings) as service,
            judging(settings, service.producer, fail_first_attempt) as judge,
        ):
            await submit(service, request_envelope(settings, "retries", essays(5)))
            await batch_in_state(service, "retries", BatchState.COMPLETED)
            batch = await newest_batch(service, "retries")
        assert batch is not None
        assert (batch.planned, batch.completed, batch.failed) == (10, 10, 0)
        assert len(judge.requests) == 20
        assert len({r.data.request_id for r in judge.requests}) == 20
        assert len({r.data.request_metadata["pair_id"] for r in judge.requests}) == 10

    async def test_retryable_errors_beyond_the_limit_count_as_failed(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            max_retries_per_pair=1,
            min_success_rate_threshold=0.0,
        )
        async with (
            running_service(settings) as service,
            judging(
                settings, service.producer, lambda r, _i: error_result(r, retryable=True)
            ) as judge,
        ):
            await submit(service, request_envelope(settings, "always-fails", essays(3)))
            await batch_in_state(service, "always-fails", BatchState.FAILED)
            batch = await newest_batch(service, "always-fails")
        assert batch is not None
        assert (batch.planned, batch.completed, batch.failed) == (3, 0, 3)
        assert len(judge.requests) == 6


class TestUnreadableCallbacks:
    async def test_an_unreadable_callback_is_dead_lettered_and_the_batch_still_completes(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            await service.producer.send(
                OutgoingMessage(topic=settings.callback_topic, value=b"\xff\xfe", key="x")
            )
            async with judging(settings, service.producer):
                await submit(service, request_envelope(settings, "after-bad-callback", essays(3)))
                await batch_in_state(service, "after-bad-callback", BatchState.COMPLETED)
            dead = await read_topic(
                kafka_bootstrap_servers, dlq_topic_name(settings.callback_topic), expected=1
            )
        assert [r.value for r in dead] == [b"\xff\xfe"]
