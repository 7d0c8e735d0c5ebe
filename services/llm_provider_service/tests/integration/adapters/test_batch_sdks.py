"""The batch adapters through the official SDKs against the fake batch endpoints: submission,
lookup by submission key, progress, answers, per-item errors and every way a batch ends."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from llm_provider_service.adapters.anthropic_batch import AnthropicBatchAPI
from llm_provider_service.adapters.anthropic_chat import make_anthropic_client
from llm_provider_service.adapters.openai_batch import OpenAIBatchAPI
from llm_provider_service.adapters.openai_chat import make_openai_client
from llm_provider_service.application.ports import BatchAPI, BatchCall, ChatRequest, ItemOutcome
from llm_provider_service.domain.answers import COMPARISON_SCHEMA, parse_comparison_answer
from llm_provider_service.domain.batches import BatchEnd
from llm_provider_service.domain.errors import (
    BatchCancelledError,
    BatchExpiredError,
    ProviderRequestRejectedError,
    ProviderServerError,
)
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from llm_provider_service.testing.fake_llm_server import (
    FAKE_COMPLETION_TOKENS,
    FakeLLMServer,
    FakeReply,
)

pytestmark = pytest.mark.integration

PROVIDERS = ("openai", "anthropic")


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(batch_script=BatchScript()) as fake:
        yield fake


@pytest.fixture(params=PROVIDERS)
async def api(request: pytest.FixtureRequest, server: FakeLLMServer) -> AsyncIterator[BatchAPI]:
    if request.param == "openai":
        openai_client = make_openai_client(
            api_key="k", base_url=server.openai_base_url, timeout_seconds=5
        )
        yield OpenAIBatchAPI(openai_client)
        await openai_client.close()
    else:
        anthropic_client = make_anthropic_client(
            api_key="k", base_url=server.anthropic_base_url, timeout_seconds=5
        )
        yield AnthropicBatchAPI(anthropic_client)
        await anthropic_client.close()


def _calls(n: int) -> list[BatchCall]:
    request = ChatRequest(
        model="fake-model",
        system="Judge the essays.",
        user="Essay A ... Essay B ...",
        schema_name="comparison_verdict",
        schema=COMPARISON_SCHEMA,
        temperature=0.0,
        max_tokens=100,
    )
    return [BatchCall(str(uuid.uuid4()), request) for _ in range(n)]


def _by_id(outcomes: list[ItemOutcome]) -> dict[str, ItemOutcome]:
    return {outcome.custom_id: outcome for outcome in outcomes}


class TestSubmissionAndAnswers:
    async def test_every_call_is_answered_under_its_custom_id(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        calls = _calls(5)
        batch_id = await api.submit(calls, key=str(uuid.uuid4()))
        progress = await api.progress(batch_id)
        outcomes = _by_id(await api.outcomes(batch_id))

        assert progress.end is BatchEnd.COMPLETED
        assert set(outcomes) == {call.custom_id for call in calls}
        for outcome in outcomes.values():
            assert outcome.error is None
            assert outcome.reply is not None
            assert parse_comparison_answer(outcome.reply.text).confidence == 4
            assert outcome.reply.prompt_tokens > 0
            assert outcome.reply.completion_tokens == FAKE_COMPLETION_TOKENS
        assert [(count) for _, _, count in server.batches.created] == [5]
        assert server.received == []  # no synchronous call was made

    async def test_the_items_are_answered_by_the_servers_judge_script_like_sync_calls(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        verdict = {"winner": "essay_b", "justification": "B argues better.", "confidence": 2}
        server.script = lambda _request, _index: FakeReply(content=json.dumps(verdict))
        batch_id = await api.submit(_calls(2), key="k")
        outcomes = await api.outcomes(batch_id)

        assert len(outcomes) == 2
        for outcome in outcomes:
            assert outcome.reply is not None
            assert parse_comparison_answer(outcome.reply.text).winner == "essay_b"

    async def test_a_held_batch_is_still_running(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        server.batches.script.held = True
        batch_id = await api.submit(_calls(2), key="k")
        assert (await api.progress(batch_id)).end is None


class TestFindBySubmissionKey:
    async def test_a_submission_is_found_again_after_its_answer_was_lost(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        server.batches.script.held = True
        key = str(uuid.uuid4())
        since = datetime.now(UTC) - timedelta(minutes=1)
        other = await api.submit(_calls(3), key=str(uuid.uuid4()))
        mine = await api.submit(_calls(2), key=key)

        assert await api.find(key, item_count=2, created_after=since, known={other}) == mine

    async def test_nothing_is_found_when_the_submission_never_reached_the_provider(
        self, api: BatchAPI
    ) -> None:
        since = datetime.now(UTC) - timedelta(minutes=1)
        assert (
            await api.find(str(uuid.uuid4()), item_count=2, created_after=since, known=()) is None
        )


class TestItemErrorsAndEndings:
    async def test_per_item_errors_map_to_their_status(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        statuses = {1: 400, 2: 500}
        server.batches.script.item_status = lambda _cid, index: statuses.get(index)
        calls = _calls(3)
        batch_id = await api.submit(calls, key="k")
        assert (await api.progress(batch_id)).end is BatchEnd.COMPLETED
        outcomes = _by_id(await api.outcomes(batch_id))

        assert outcomes[calls[0].custom_id].reply is not None
        assert isinstance(outcomes[calls[1].custom_id].error, ProviderRequestRejectedError)
        rejected = outcomes[calls[1].custom_id].error
        assert rejected is not None
        assert not rejected.retryable
        server_error = outcomes[calls[2].custom_id].error
        assert isinstance(server_error, ProviderServerError)
        assert server_error.retryable

    async def test_an_expired_batch_answers_what_ran_and_expires_the_rest(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        server.batches.script.end = "expired"
        server.batches.script.answered_before_end = 1
        calls = _calls(3)
        batch_id = await api.submit(calls, key="k")
        assert (await api.progress(batch_id)).end is BatchEnd.EXPIRED
        outcomes = _by_id(await api.outcomes(batch_id))

        assert outcomes[calls[0].custom_id].reply is not None
        for call in calls[1:]:
            error = outcomes[call.custom_id].error
            assert isinstance(error, BatchExpiredError)
            assert error.retryable

    async def test_a_cancelled_batch_ends_cancelled(
        self, api: BatchAPI, server: FakeLLMServer
    ) -> None:
        server.batches.script.end = "cancelled"
        calls = _calls(2)
        batch_id = await api.submit(calls, key="k")
        assert (await api.progress(batch_id)).end is BatchEnd.CANCELLED
        outcomes = _by_id(await api.outcomes(batch_id))
        # Anthropic lists the cancelled requests; OpenAI leaves them out of its files.
        for call in calls:
            error = outcomes[call.custom_id].error if call.custom_id in outcomes else None
            assert error is None or isinstance(error, BatchCancelledError)
