"""The request consumer over the real broker: callbacks, concurrency, backpressure, commits after
the callback's ack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from common_core.events.envelope import decode_event
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMProviderName,
    LLMRubricRequestV1,
    LLMRubricResultV1,
)
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_concurrent import ConcurrentConsumerRunner
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.testing import eventually, read_topic
from common_core.topics import Topic, dlq_topic_name
from llm_provider_service.adapters.openai_chat import OpenAIChatModel, make_openai_client
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.judging import HeuristicJudge
from llm_provider_service.application.panel import build_panel
from llm_provider_service.application.ports import Judgement, ModelChoice
from llm_provider_service.config import Settings
from llm_provider_service.domain.answers import ComparisonAnswer, RubricAnswer
from llm_provider_service.entrypoints.consumers import request_consumer
from llm_provider_service.testing.fake_llm_server import FakeLLMServer, FakeReply, scripted
from llm_provider_service.testing.requests import comparison_envelope, rubric_envelope

pytestmark = pytest.mark.integration


class GatedJudge:
    """The heuristic, but requests whose metadata says `hold` wait for the gate to open."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.active = 0
        self.max_active = 0
        self.started = 0
        self._inner = HeuristicJudge()

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        self.started += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if request.request_metadata.get("hold"):
                await self.gate.wait()
            return await self._inner.compare(request, choice)
        finally:
            self.active -= 1

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        return await self._inner.score(request, choice)


def _settings(kafka: str, **overrides: Any) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": kafka,
        "topic_prefix": prefix,
        "llm_consumer_group": f"llm_provider_service.{prefix}",
        "llm_fetch_timeout_ms": 100,
        "llm_shutdown_grace_seconds": 3.0,
    }
    return Settings(**{**values, **overrides})


async def _provision(settings: Settings, *extra: str, partitions: int = 3) -> None:
    names = [
        settings.topic(Topic.LLM_COMPARISON_REQUESTED),
        settings.topic(Topic.LLM_RUBRIC_REQUESTED),
    ]
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [*names, *(dlq_topic_name(n) for n in names), *extra],
        partitions=partitions,
    )


async def _committed(settings: Settings, tp: TopicPartition) -> int | None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.llm_consumer_group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(tp)  # aiokafka ships no type hints
        return committed
    finally:
        await consumer.stop()


@pytest.fixture
async def producer(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaEventProducer]:
    async with KafkaEventProducer(kafka_bootstrap_servers, client_id="test-requests") as p:
        yield p


async def _run(worker: ConcurrentConsumerRunner) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run())


async def _stop(worker: ConcurrentConsumerRunner, task: asyncio.Task[None]) -> None:
    worker.stop()
    await asyncio.wait_for(task, timeout=20)


class TestCallbacks:
    async def test_every_request_gets_one_callback_on_its_callback_topic(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        settings = _settings(kafka_bootstrap_servers, llm_max_in_flight=8)
        callbacks = f"{settings.topic_prefix}.cj.callbacks"
        rubric_callbacks = f"{settings.topic_prefix}.submission.rubric"
        await _provision(settings, callbacks, rubric_callbacks)
        comparison_topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
        rubric_topic = settings.topic(Topic.LLM_RUBRIC_REQUESTED)
        comparisons = [
            comparison_envelope(comparison_topic, callbacks, metadata={"batch_id": "b", "pair": i})
            for i in range(12)
        ]
        rubrics = [
            rubric_envelope(rubric_topic, rubric_callbacks, metadata={"response_id": i})
            for i in range(4)
        ]
        keys = {e.data.request_id: f"batch-{i % 3}" for i, e in enumerate(comparisons)}
        # Half as CJ sends them (keyed by request id, the batch in `callback_key`), half as a
        # sender without `callback_key` (keyed by batch): each answer is keyed by the batch.
        for i, envelope in enumerate(comparisons):
            if i % 2:
                await producer.publish(
                    comparison_topic, envelope, key=keys[envelope.data.request_id]
                )
                continue
            spread = envelope.model_copy(
                update={
                    "data": envelope.data.model_copy(
                        update={"callback_key": keys[envelope.data.request_id]}
                    )
                }
            )
            await producer.publish(comparison_topic, spread, key=str(envelope.data.request_id))
        for rubric in rubrics:
            await producer.publish(rubric_topic, rubric, key=str(rubric.data.request_id))
        await producer.send(OutgoingMessage(comparison_topic, b"not json", key="junk"))

        answerer = RequestAnswerer(settings, build_panel(settings, {}).judges)
        worker = request_consumer(settings, answerer, producer)
        task = await _run(worker)
        try:
            records = await read_topic(kafka_bootstrap_servers, callbacks, expected=12, settle=0.5)
            rubric_records = await read_topic(kafka_bootstrap_servers, rubric_callbacks, expected=4)
            dead = await read_topic(
                kafka_bootstrap_servers, dlq_topic_name(comparison_topic), expected=1
            )
        finally:
            await _stop(worker, task)

        assert len(records) == 12
        by_request = {e.data.request_id: e for e in comparisons}
        for record in records:
            result = decode_event(record.value, LLMComparisonResultV1)
            request = by_request[result.data.request_id]
            assert result.correlation_id == request.correlation_id
            assert result.event_type == callbacks
            assert result.data.request_metadata == request.data.request_metadata
            assert result.data.provider == LLMProviderName.HEURISTIC.value
            assert result.data.winner is not None
            assert record.key is not None
            assert record.key.decode() == keys[result.data.request_id]
        assert {
            decode_event(r.value, LLMComparisonResultV1).data.request_id for r in records
        } == set(by_request)
        rubric_ids = {
            decode_event(r.value, LLMRubricResultV1).data.request_id for r in rubric_records
        }
        assert rubric_ids == {e.data.request_id for e in rubrics}
        assert [r.value for r in dead] == [b"not json"]
        assert dict(dead[0].headers)["x-dlq-error-code"] == b"envelope_invalid"


class TestVerdictProbabilities:
    async def test_callbacks_carry_the_probability_of_openai_and_of_the_heuristic(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        async with FakeLLMServer(scripted(then=FakeReply(probability=0.35))) as server:
            settings = _settings(
                kafka_bootstrap_servers,
                openai_api_key="sk-test",
                openai_base_url=server.openai_base_url,
                llm_rate_limit_scope="local",
            )
            callbacks = f"{settings.topic_prefix}.cj.callbacks"
            await _provision(settings, callbacks)
            topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
            providers = {LLMProviderName.OPENAI: 0.35, LLMProviderName.HEURISTIC: None}
            sent = {}
            for provider in providers:
                envelope = comparison_envelope(topic, callbacks, provider=provider)
                sent[envelope.data.request_id] = provider
                await producer.publish(topic, envelope, key="pair")
            client = make_openai_client(
                api_key="sk-test", base_url=server.openai_base_url, timeout_seconds=5
            )
            panel = build_panel(settings, {LLMProviderName.OPENAI: OpenAIChatModel(client)})
            worker = request_consumer(settings, RequestAnswerer(settings, panel.judges), producer)
            task = await _run(worker)
            try:
                records = await read_topic(kafka_bootstrap_servers, callbacks, expected=2)
            finally:
                await _stop(worker, task)
                await client.close()

        results = {
            result.request_id: result
            for result in (decode_event(r.value, LLMComparisonResultV1).data for r in records)
        }
        assert set(results) == set(sent)
        for request_id, provider in sent.items():
            probability = results[request_id].probability_essay_a_better
            assert probability is not None
            if provider is LLMProviderName.OPENAI:
                assert probability == pytest.approx(0.35)
                assert results[request_id].winner == "essay_b"
            else:  # the developed essay over the one-liner, from the calibrated margin
                assert probability > 0.9
                assert results[request_id].winner == "essay_a"


class TestConcurrencyAndCommits:
    async def test_requests_run_concurrently_up_to_the_limit_and_fetching_pauses_there(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        settings = _settings(kafka_bootstrap_servers, llm_max_in_flight=3)
        callbacks = f"{settings.topic_prefix}.callbacks"
        await _provision(settings, callbacks)
        topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
        for _ in range(7):
            await producer.publish(
                topic, comparison_envelope(topic, callbacks, metadata={"hold": True}), key="k"
            )
        judge = GatedJudge()
        worker = request_consumer(
            settings, RequestAnswerer(settings, {LLMProviderName.HEURISTIC: judge}), producer
        )
        task = await _run(worker)
        try:
            await eventually(
                lambda: _value(judge.active), until=lambda n: n == 3, what="3 requests in flight"
            )
            assert worker.in_flight == 3
            judge.gate.set()
            records = await read_topic(kafka_bootstrap_servers, callbacks, expected=7)
        finally:
            await _stop(worker, task)
        assert len(records) == 7
        assert judge.max_active == 3
        assert judge.started == 7

    async def test_offsets_are_committed_in_order_after_out_of_order_completion(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        settings = _settings(kafka_bootstrap_servers, llm_max_in_flight=16, topic_partitions=1)
        callbacks = f"{settings.topic_prefix}.callbacks"
        await _provision(settings, callbacks, partitions=1)
        topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
        tp = TopicPartition(topic, 0)
        # The first request is held; the five behind it finish first.
        await producer.publish(
            topic, comparison_envelope(topic, callbacks, metadata={"hold": True}), key="k"
        )
        for _ in range(5):
            await producer.publish(topic, comparison_envelope(topic, callbacks), key="k")
        judge = GatedJudge()
        worker = request_consumer(
            settings, RequestAnswerer(settings, {LLMProviderName.HEURISTIC: judge}), producer
        )
        task = await _run(worker)
        try:
            assert len(await read_topic(kafka_bootstrap_servers, callbacks, expected=5)) == 5
            await eventually(lambda: _value(judge.active), until=lambda n: n == 1)
            # Five callbacks are acknowledged, but offset 0 is unanswered: nothing may be committed.
            assert await _committed(settings, tp) in (None, 0)
            judge.gate.set()
            await eventually(
                lambda: _committed(settings, tp),
                until=lambda o: o == 6,
                what="commit of offset 6",
            )
        finally:
            await _stop(worker, task)


async def _value(value: int) -> int:
    return value


class TestShutdown:
    async def test_stop_finishes_in_flight_requests_then_commits(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        settings = _settings(kafka_bootstrap_servers, llm_max_in_flight=8, topic_partitions=1)
        callbacks = f"{settings.topic_prefix}.callbacks"
        await _provision(settings, callbacks, partitions=1)
        topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
        for _ in range(4):
            envelope = comparison_envelope(topic, callbacks, metadata={"hold": True})
            await producer.publish(topic, envelope, key="k")
        judge = GatedJudge()
        answerer = RequestAnswerer(settings, {LLMProviderName.HEURISTIC: judge})
        worker = request_consumer(settings, answerer, producer)
        task = await _run(worker)
        await eventually(lambda: _value(judge.active), until=lambda n: n == 4)
        worker.stop()  # as on SIGTERM: no more fetching, in-flight requests still finish
        judge.gate.set()
        await asyncio.wait_for(task, timeout=20)
        assert len(await read_topic(kafka_bootstrap_servers, callbacks, expected=4)) == 4
        assert await _committed(settings, TopicPartition(topic, 0)) == 4

    async def test_requests_not_finished_within_the_grace_period_are_redelivered(
        self, kafka_bootstrap_servers: str, producer: KafkaEventProducer
    ) -> None:
        settings = _settings(
            kafka_bootstrap_servers,
            llm_max_in_flight=8,
            topic_partitions=1,
            llm_shutdown_grace_seconds=0.3,
        )
        callbacks = f"{settings.topic_prefix}.callbacks"
        await _provision(settings, callbacks, partitions=1)
        topic = settings.topic(Topic.LLM_COMPARISON_REQUESTED)
        envelopes = [
            comparison_envelope(topic, callbacks, metadata={"hold": True}) for _ in range(3)
        ]
        for envelope in envelopes:
            await producer.publish(topic, envelope, key="k")
        stuck = GatedJudge()  # its gate never opens
        worker = request_consumer(
            settings, RequestAnswerer(settings, {LLMProviderName.HEURISTIC: stuck}), producer
        )
        task = await _run(worker)
        await eventually(lambda: _value(stuck.active), until=lambda n: n == 3)
        worker.stop()
        await asyncio.wait_for(task, timeout=20)
        assert await _committed(settings, TopicPartition(topic, 0)) in (None, 0)

        healthy = GatedJudge()
        healthy.gate.set()
        again = request_consumer(
            settings, RequestAnswerer(settings, {LLMProviderName.HEURISTIC: healthy}), producer
        )
        task = await _run(again)
        try:
            records = await read_topic(kafka_bootstrap_servers, callbacks, expected=3)
        finally:
            await _stop(again, task)
        answered = {decode_event(r.value, LLMComparisonResultV1).data.request_id for r in records}
        assert answered == {e.data.request_id for e in envelopes}
