"""Batch mode's use cases on the real PostgreSQL store, through the official SDKs against the
fake batch endpoints: per-item errors and every way a batch ends become error callbacks with
the right codes; a submission whose answer was lost is reconciled, never submitted twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.errors import ErrorCode
from common_core.events.envelope import decode_event
from common_core.events.llm import LLMComparisonResultV1, LLMMode, LLMProviderName
from common_core.runtime.database import asyncpg_dsn, create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from common_core.runtime.outbox import event_outbox
from common_core.runtime.unit_of_work import SessionTransactions
from common_core.testing import eventually
from llm_provider_service.adapters.anthropic_batch import AnthropicBatchAPI
from llm_provider_service.adapters.anthropic_chat import make_anthropic_client
from llm_provider_service.adapters.openai_batch import OpenAIBatchAPI
from llm_provider_service.adapters.openai_chat import make_openai_client
from llm_provider_service.adapters.postgres import PostgresUnitOfWork
from llm_provider_service.application.batch_results import BatchCallbacks
from llm_provider_service.application.batching import (
    BatchIntake,
    BatchPoller,
    BatchSubmitter,
    chat_request,
)
from llm_provider_service.application.ports import BatchAPI, BatchCall
from llm_provider_service.config import Settings
from llm_provider_service.entrypoints.runtime import VERSIONS_DIR
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from llm_provider_service.testing.fake_llm_server import FakeLLMServer, FakeReply, ReceivedRequest
from llm_provider_service.testing.requests import comparison_envelope
from llm_provider_service.testing.sample_essays import ORDINARY_ESSAYS

pytestmark = pytest.mark.integration

PROVIDERS = [LLMProviderName.OPENAI, LLMProviderName.ANTHROPIC]


@pytest.fixture
async def engine(postgres_server_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database of its own, dropped afterwards."""
    name = f"llmb_{uuid.uuid4().hex}"
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    await run_migrations(url, [VERSIONS_DIR])
    engine = create_engine(url, pool_size=2)
    yield engine
    await engine.dispose()
    connection = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await connection.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(batch_script=BatchScript()) as fake:
        yield fake


@dataclass
class Batching:
    """The batch-mode use cases over one provider's SDK adapter and the database."""

    provider: LLMProviderName
    settings: Settings
    api: BatchAPI
    intake: BatchIntake
    submitter: BatchSubmitter
    poller: BatchPoller
    engine: AsyncEngine
    transactions: SessionTransactions[PostgresUnitOfWork]

    async def enqueue(self, n: int, **request: Any) -> list[uuid.UUID]:
        ids = []
        for i in range(n):
            envelope = comparison_envelope(
                "requests",
                "callbacks",
                metadata={"n": i},
                provider=self.provider,
                mode=LLMMode.BATCH,
                **request,
            )
            assert await self.intake.enqueue(envelope, key=f"k{i}")
            ids.append(envelope.data.request_id)
        return ids

    async def callbacks(self) -> list[LLMComparisonResultV1]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(event_outbox.c.payload))).scalars().all()
        return [decode_event(row, LLMComparisonResultV1).data for row in rows]

    async def answered(self, n: int) -> dict[uuid.UUID, LLMComparisonResultV1]:
        """Poll until `n` callbacks are staged; each request's callback by request id."""

        async def staged() -> list[LLMComparisonResultV1]:
            await self.poller.poll_due()
            return await self.callbacks()

        results = await eventually(staged, until=lambda r: len(r) >= n, what="callbacks")
        by_id = {r.request_id: r for r in results}
        assert len(by_id) == len(results) == n, "a request got more than one callback"
        return by_id


@pytest.fixture(params=PROVIDERS, ids=[p.value for p in PROVIDERS])
async def batching(
    request: pytest.FixtureRequest, engine: AsyncEngine, server: FakeLLMServer
) -> AsyncIterator[Batching]:
    provider: LLMProviderName = request.param
    settings = Settings(
        openai_api_key="sk-test",
        openai_base_url=server.openai_base_url,
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=server.anthropic_base_url,
        llm_batch_window_seconds=0,
        llm_batch_poll_initial_seconds=0.01,
        llm_batch_poll_max_seconds=0.05,
        llm_request_timeout_seconds=0.5,
        llm_batch_submit_lease_seconds=0.6,
    )
    api: BatchAPI
    if provider is LLMProviderName.OPENAI:
        client: Any = make_openai_client(
            api_key="sk-test", base_url=server.openai_base_url, timeout_seconds=5
        )
        api = OpenAIBatchAPI(client)
    else:
        client = make_anthropic_client(
            api_key="sk-ant-test", base_url=server.anthropic_base_url, timeout_seconds=5
        )
        api = AnthropicBatchAPI(client)
    transactions = SessionTransactions(create_session_factory(engine), PostgresUnitOfWork)
    apis = {provider: api}
    callbacks = BatchCallbacks(settings)
    yield Batching(
        provider=provider,
        settings=settings,
        api=api,
        intake=BatchIntake(settings, transactions, apis),
        submitter=BatchSubmitter(settings, transactions, apis, callbacks),
        poller=BatchPoller(settings, transactions, apis, callbacks),
        engine=engine,
        transactions=transactions,
    )
    await client.close()


class TestItemErrorsAndEndings:
    async def test_per_item_errors_become_error_callbacks_with_their_codes(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.batches.script.item_status = lambda _cid, index: {1: 400, 2: 500}.get(index)
        ids = await batching.enqueue(3)
        assert await batching.submitter.submit_due()
        results = await batching.answered(3)

        assert results[ids[0]].winner is not None
        rejected = results[ids[1]].error_detail
        assert rejected is not None
        assert rejected.code is ErrorCode.VALIDATION
        assert not rejected.retryable
        failed = results[ids[2]].error_detail
        assert failed is not None
        assert failed.code is ErrorCode.PROVIDER_ERROR
        assert failed.retryable

    async def test_an_expired_batch_answers_what_ran_and_times_out_the_rest(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.batches.script.end = "expired"
        server.batches.script.answered_before_end = 1
        ids = await batching.enqueue(3)
        assert await batching.submitter.submit_due()
        results = await batching.answered(3)

        assert results[ids[0]].winner is not None
        for request_id in ids[1:]:
            error = results[request_id].error_detail
            assert error is not None
            assert error.code is ErrorCode.TIMEOUT
            assert error.retryable

    async def test_a_cancelled_batch_answers_every_request_with_a_cancelled_error(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.batches.script.end = "cancelled"
        ids = await batching.enqueue(2)
        assert await batching.submitter.submit_due()
        results = await batching.answered(2)

        for request_id in ids:
            error = results[request_id].error_detail
            assert error is not None
            assert error.code is ErrorCode.CANCELLED
            assert error.retryable

    # Only OpenAI batches can fail as a whole (an Anthropic batch has no such ending).
    @pytest.mark.parametrize("batching", [LLMProviderName.OPENAI], ids=["openai"], indirect=True)
    async def test_a_batch_the_provider_fails_answers_with_a_validation_error(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.batches.script.end = "failed"
        ids = await batching.enqueue(2)
        assert await batching.submitter.submit_due()
        results = await batching.answered(2)

        for request_id in ids:
            error = results[request_id].error_detail
            assert error is not None
            assert error.code is ErrorCode.VALIDATION
            assert not error.retryable


# The fake judge's probability that essay A is better, by essay B of the pair.
JUDGED = {ORDINARY_ESSAYS[3]: 0.85, ORDINARY_ESSAYS[4]: 0.3, ORDINARY_ESSAYS[5]: 0.5}


def _judge(request: ReceivedRequest, _index: int) -> FakeReply:
    """Answers with the probability JUDGED holds for the essay B the prompt shows."""
    prompt = json.dumps(request.body, ensure_ascii=False)
    [probability] = [p for essay, p in JUDGED.items() if json.dumps(essay)[1:-1] in prompt]
    return FakeReply(probability=probability)


class TestVerdictProbabilities:
    async def test_each_callback_carries_its_judges_probability_from_openai_only(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.script = _judge
        ids = {
            (await batching.enqueue(1, essay_b=essay))[0]: probability
            for essay, probability in JUDGED.items()
        }
        assert await batching.submitter.submit_due()
        results = await batching.answered(len(ids))

        for request_id, probability in ids.items():
            result = results[request_id]
            expected_winner = "essay_b" if probability < 0.5 else "essay_a"
            assert result.winner == expected_winner
            if batching.provider is LLMProviderName.OPENAI:
                assert result.probability_essay_a_better == pytest.approx(probability)
            else:  # Anthropic returns no log-probabilities; the 1-5 confidence is not one
                assert result.probability_essay_a_better is None
                assert result.confidence == 4


# A rubric long enough to make the static prefix cacheable for both models (about 3,500 tokens).
LONG_RUBRIC = " ".join(
    f"Criterion {i}: the essay weighs evidence on pollution, transport, business and residents, "
    f"and explains how point {i} supports its conclusion."
    for i in range(100)
)
CACHING_MODELS = {
    LLMProviderName.OPENAI: "gpt-4o-mini",
    LLMProviderName.ANTHROPIC: "claude-sonnet-4-6",
}


class TestPromptCachingInBatches:
    async def test_batch_items_read_the_cached_prefix_priced_at_the_cached_rate_less_the_discount(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        model = CACHING_MODELS[batching.provider]
        ids = await batching.enqueue(3, model=model, judge_rubric=LONG_RUBRIC)
        assert await batching.submitter.submit_due()
        results = await batching.answered(3)

        usages = [results[request_id].usage for request_id in ids]
        assert usages[0].cached_prompt_tokens == 0
        for usage in usages[1:]:
            assert usage.cached_prompt_tokens >= 1024
            assert usage.cache_write_tokens == 0
        price = batching.settings.price_table.price(batching.provider.value, model)
        assert price is not None
        assert price.batch_discount > 0
        for usage in usages:
            uncached = usage.prompt_tokens - usage.cached_prompt_tokens - usage.cache_write_tokens
            list_price = (
                uncached * price.input
                + usage.cached_prompt_tokens * price.cached_input
                + usage.cache_write_tokens * price.cache_write
                + usage.completion_tokens * price.output
            ) / 1e6
            assert usage.estimated_cost_usd == pytest.approx(
                list_price * (1 - price.batch_discount)
            )
        assert usages[1].estimated_cost_usd is not None
        assert usages[0].estimated_cost_usd is not None
        assert usages[1].estimated_cost_usd < usages[0].estimated_cost_usd

    # Anthropic caches only up to a breakpoint: the batch items carry the same ones as a
    # synchronous call (after the static head, and after essay A).
    @pytest.mark.parametrize(
        "batching", [LLMProviderName.ANTHROPIC], ids=["anthropic"], indirect=True
    )
    async def test_anthropic_batch_items_write_the_prefix_once_then_read_it(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        ids = await batching.enqueue(
            2, model=CACHING_MODELS[batching.provider], judge_rubric=LONG_RUBRIC
        )
        assert await batching.submitter.submit_due()
        results = await batching.answered(2)

        first, second = (results[request_id].usage for request_id in ids)
        assert first.cache_write_tokens >= 1024
        assert second.cached_prompt_tokens == first.cache_write_tokens
        assert server.received == []  # nothing went the synchronous way


class TestNoDoubleSubmission:
    async def test_a_redelivered_request_is_recorded_and_answered_once(
        self, batching: Batching
    ) -> None:
        envelope = comparison_envelope(
            "requests", "callbacks", provider=batching.provider, mode=LLMMode.BATCH
        )
        assert await batching.intake.enqueue(envelope, key="k")
        assert not await batching.intake.enqueue(envelope, key="k")
        assert await batching.submitter.submit_due()
        assert not await batching.submitter.submit_due()
        results = await batching.answered(1)
        assert set(results) == {envelope.data.request_id}

    async def test_a_submission_whose_record_was_lost_is_found_and_not_submitted_again(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        server.batches.script.held = True
        ids = await batching.enqueue(3)
        # The crash: the chunk is opened and submitted, and the process dies before recording.
        async with batching.transactions() as uow:
            batch = await uow.batches.open_batch(
                window_seconds=0, max_size=10, lease_seconds=0.6, poll_seconds=0.01
            )
            assert batch is not None
            items = await uow.batches.requests_of(batch.id)
        calls = [BatchCall(str(i.request_id), chat_request(i, batching.settings)) for i in items]
        await batching.api.submit(calls, key=str(batch.id))
        assert not await batching.submitter.submit_due()  # nothing else is pending

        reconciled = await eventually(
            batching.submitter.reconcile_one, what="the lease to run out and the reconciliation"
        )
        assert reconciled
        async with batching.engine.connect() as connection:
            state = await connection.scalar(
                text("SELECT state FROM provider_batches WHERE id = :id"), {"id": batch.id}
            )
        assert state == "submitted"
        server.batches.script.held = False
        results = await batching.answered(3)
        assert set(results) == set(ids)
        assert len(server.batches.created) == 1, "the chunk was submitted twice"

    async def test_two_instances_submit_each_chunk_once_and_answer_each_request_once(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        """Two submitters on one database take turns (one Anthropic chunk at a time, any
        number of OpenAI chunks): every chunk reaches the provider once."""
        settings = batching.settings.model_copy(update={"llm_batch_max_size": 2})
        apis = {batching.provider: batching.api}
        instances = [
            BatchSubmitter(settings, batching.transactions, apis, BatchCallbacks(settings))
            for _ in range(2)
        ]
        ids = await batching.enqueue(6)

        async def submit_until_none_pending(submitter: BatchSubmitter) -> None:
            async def pending() -> int:
                async with batching.engine.connect() as connection:
                    count = await connection.scalar(
                        text("SELECT count(*) FROM batch_items WHERE state = 'pending'")
                    )
                return int(count or 0)

            while await pending():
                await submitter.submit_due()
                await asyncio.sleep(0)

        await asyncio.gather(*(submit_until_none_pending(s) for s in instances))
        results = await batching.answered(6)
        assert set(results) == set(ids)
        assert len(server.batches.created) == 3

    async def test_a_chunk_that_never_reached_the_provider_is_submitted_by_the_reconciler(
        self, batching: Batching, server: FakeLLMServer
    ) -> None:
        ids = await batching.enqueue(2)
        async with batching.transactions() as uow:
            batch = await uow.batches.open_batch(
                window_seconds=0, max_size=10, lease_seconds=0.6, poll_seconds=0.01
            )
        assert batch is not None
        assert server.batches.created == []

        assert await eventually(batching.submitter.reconcile_one, what="reconciliation")
        results = await batching.answered(2)
        assert set(results) == set(ids)
        assert len(server.batches.created) == 1


class TestRetention:
    async def test_answered_requests_keep_no_text_and_are_purged_after_retention(
        self, batching: Batching
    ) -> None:
        ids = await batching.enqueue(2)
        assert await batching.submitter.submit_due()
        await batching.answered(2)
        async with batching.engine.connect() as connection:
            texts = (await connection.execute(text("SELECT envelope FROM batch_items"))).scalars()
            assert set(texts) == {""}

        async with batching.transactions() as uow:
            assert await uow.batches.purge_finished(0) == len(ids)
        async with batching.engine.connect() as connection:
            remaining = await connection.scalar(
                text(
                    "SELECT (SELECT count(*) FROM batch_items)"
                    " + (SELECT count(*) FROM provider_batches)"
                )
            )
        assert remaining == 0


class TestStoredKeys:
    async def test_a_request_is_stored_under_its_answer_key_where_its_batch_erasure_finds_it(
        self, batching: Batching
    ) -> None:
        sent = comparison_envelope(
            "requests", "callbacks", provider=batching.provider, mode=LLMMode.BATCH
        )
        request = sent.data.model_copy(update={"callback_key": "cj-batch-1"})
        envelope = sent.model_copy(update={"data": request})
        # keyed by its own id, as CJ sends it: the answer (and the erasure) go by the batch
        assert await batching.intake.enqueue(envelope, key=str(request.request_id))

        async with batching.transactions() as uow:
            by_request_key = await uow.batches.drop_waiting(str(request.request_id))
            by_batch = await uow.batches.drop_waiting("cj-batch-1")
        assert by_request_key == (0, 0)
        assert by_batch == (1, 0)
