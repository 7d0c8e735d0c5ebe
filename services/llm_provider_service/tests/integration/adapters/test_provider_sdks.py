"""The real `openai` and `anthropic` SDKs against a scripted local HTTP server.

No broker is needed: the server runs in the test's event loop on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from common_core.errors import ErrorCode
from common_core.events.llm import (
    ComparisonEssay,
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    ReferencePassage,
)
from common_core.testing import eventually
from llm_provider_service.adapters.anthropic_chat import AnthropicChatModel, make_anthropic_client
from llm_provider_service.adapters.openai_chat import OpenAIChatModel, make_openai_client
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.panel import JudgePanel, build_panel
from llm_provider_service.application.ports import ChatModel
from llm_provider_service.config import Settings
from llm_provider_service.domain.circuit_breaker import CircuitBreaker, CircuitState
from llm_provider_service.testing.fake_llm_server import (
    FAKE_COMPLETION_TOKENS,
    GROUNDED_CITATION,
    FakeLLMServer,
    FakeReply,
    openai_usage,
    scripted,
)
from llm_provider_service.testing.sample_essays import DEVELOPED_ON_TOPIC, INSTRUCTIONS, ONE_LINE


def _state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


MALFORMED = FakeReply(content='{"winner": "essay_a", "justification": ')


@pytest.fixture
async def server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer() as fake:
        yield fake


class Harness:
    """Settings, panel and answerer wired to the fake server through the real SDKs."""

    def __init__(self, server: FakeLLMServer, **overrides: Any) -> None:
        values: dict[str, Any] = {
            "openai_api_key": "test-openai-key",
            "openai_base_url": server.openai_base_url,
            "anthropic_api_key": "test-anthropic-key",
            "anthropic_base_url": server.anthropic_base_url,
            "llm_request_timeout_seconds": 0.5,
            "llm_retry_initial_seconds": 0.05,
            "llm_retry_max_seconds": 0.2,
            "llm_max_retries": 2,
        }
        values.update(overrides)
        self.settings = Settings(**values)
        timeout = self.settings.llm_request_timeout_seconds
        self.openai_client = make_openai_client(
            api_key="test-openai-key", base_url=server.openai_base_url, timeout_seconds=timeout
        )
        self.anthropic_client = make_anthropic_client(
            api_key="test-anthropic-key",
            base_url=server.anthropic_base_url,
            timeout_seconds=timeout,
        )
        chat_models: dict[LLMProviderName, ChatModel] = {
            LLMProviderName.OPENAI: OpenAIChatModel(self.openai_client),
            LLMProviderName.ANTHROPIC: AnthropicChatModel(self.anthropic_client),
        }
        self.panel: JudgePanel = build_panel(self.settings, chat_models)
        self.answerer = RequestAnswerer(self.settings, self.panel.judges)

    async def compare(
        self,
        provider: LLMProviderName = LLMProviderName.OPENAI,
        *,
        model: str | None = None,
        rubric: str | None = None,
        essay_b: str = ONE_LINE,
    ) -> LLMComparisonResultV1:
        request = LLMComparisonRequestV1(
            request_id=uuid.uuid4(),
            essay_a=ComparisonEssay(essay_id="e1", text_content=DEVELOPED_ON_TOPIC),
            essay_b=ComparisonEssay(essay_id="e2", text_content=essay_b),
            essay_instructions=INSTRUCTIONS,
            judge_rubric=rubric,
            llm_config=LLMConfig(provider=provider, model=model),
            callback_topic="results",
            request_metadata={"pair": 1},
        )
        return await self.answerer.answer_comparison(request, uuid.uuid4())

    async def close(self) -> None:
        await self.openai_client.close()
        await self.anthropic_client.close()


@pytest.fixture
async def make_harness(server: FakeLLMServer) -> AsyncIterator[Any]:
    made: list[Harness] = []

    def make(**overrides: Any) -> Harness:
        harness = Harness(server, **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.close()


class TestGoodAnswers:
    async def test_openai_structured_output_is_read_from_the_first_choice(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        result = await make_harness().compare()
        assert result.winner is ComparisonWinner.ESSAY_A
        assert result.confidence == 4
        assert result.provider == "openai"
        assert result.model == "gpt-4o-mini"
        [request] = server.received
        assert (
            result.usage.prompt_tokens
            == openai_usage(request.body, cached_tokens=0)["prompt_tokens"]
        )
        assert result.usage.completion_tokens == FAKE_COMPLETION_TOKENS
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer test-openai-key"
        assert request.body["response_format"]["type"] == "json_schema"
        assert request.body["response_format"]["json_schema"]["name"] == "comparison_verdict"
        user = request.body["messages"][1]["content"]
        assert user.index(DEVELOPED_ON_TOPIC) < user.index(ONE_LINE)

    async def test_anthropic_messages_answer_is_parsed(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        result = await make_harness().compare(LLMProviderName.ANTHROPIC)
        assert result.winner is ComparisonWinner.ESSAY_A
        assert result.provider == "anthropic"
        [request] = server.received
        assert request.path == "/v1/messages"
        # SDK versions differ in how they send the key; either way it is this one.
        sent = request.headers.get("x-api-key") or request.headers["authorization"].removeprefix(
            "Bearer "
        )
        assert sent == "test-anthropic-key"

    async def test_openai_rubric_scores(self, server: FakeLLMServer, make_harness: Any) -> None:
        harness = make_harness()
        request = LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text="An answer.",
            question_text="Q?",
            callback_topic="r",
            llm_config=LLMConfig(provider=LLMProviderName.OPENAI),
        )
        result = await harness.answerer.answer_rubric(request, uuid.uuid4())
        assert result.scores is not None
        assert result.scores.relevance == 4
        assert result.overall == 3.5

    @pytest.mark.parametrize("provider", [LLMProviderName.OPENAI, LLMProviderName.ANTHROPIC])
    async def test_grounded_rubric_sends_the_passages_and_reads_the_citations(
        self, server: FakeLLMServer, make_harness: Any, provider: LLMProviderName
    ) -> None:
        harness = make_harness()
        passages = [
            ReferencePassage(
                passage_id=GROUNDED_CITATION, text="Key point: digital books cost less."
            ),
            ReferencePassage(passage_id="kp-2", text="Key point: screens tire the eyes."),
        ]
        request = LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text="Digital books cost less to update.",
            question_text="Should schools replace printed textbooks?",
            callback_topic="r",
            llm_config=LLMConfig(provider=provider),
            reference_passages=passages,
        )
        result = await harness.answerer.answer_rubric(request, uuid.uuid4())
        assert result.error_detail is None
        assert result.citations == [GROUNDED_CITATION]  # the invented id is dropped
        assert result.prompt_version == "rubric_grounded_v1"
        [sent] = server.received
        wire = json.dumps(sent.body)
        assert "grounded_rubric_scores" in wire
        for passage in passages:
            assert json.dumps(passage.text)[1:-1] in wire


def _refuse_logprobs(status: int, message: str) -> Any:
    """A reasoning model's (o4-mini's) answer to a call asking for log-probabilities; a good
    one else."""

    def script(request: Any, _index: int) -> FakeReply:
        if request.body.get("logprobs") and request.body["model"] == "o4-mini":
            return FakeReply(status=status, error_message=message, error_code="unsupported")
        return FakeReply(probability=0.9)

    return script


class TestVerdictProbabilities:
    @pytest.mark.parametrize(("probability", "winner"), [(0.73, "essay_a"), (0.2, "essay_b")])
    async def test_openai_verdict_token_logprobs_become_the_probability_of_essay_a(
        self, server: FakeLLMServer, make_harness: Any, probability: float, winner: str
    ) -> None:
        server.script = scripted(then=FakeReply(probability=probability))
        labels = {"provider": "openai", "mode": "sync", "outcome": "present"}
        before = _sample("huleedu_llm_verdict_probabilities_total", **labels)
        result = await make_harness().compare()
        assert result.winner is ComparisonWinner(winner)
        assert result.probability_essay_a_better == pytest.approx(probability)
        assert _sample("huleedu_llm_verdict_probabilities_total", **labels) == before + 1
        [request] = server.received
        assert (request.body["logprobs"], request.body["top_logprobs"]) == (True, 5)

    async def test_an_answer_without_a_verdict_letter_first_has_no_probability(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        verdict = {"winner": "essay_a", "justification": "A argues better.", "confidence": 3}
        server.script = scripted(then=FakeReply(content=json.dumps(verdict), probability=0.7))
        result = await make_harness().compare()
        assert result.winner is ComparisonWinner.ESSAY_A
        assert result.probability_essay_a_better is None

    async def test_logprobs_off_asks_for_none_and_gives_none(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(probability=0.6))
        result = await make_harness(llm_openai_logprobs=False).compare()
        assert result.winner is ComparisonWinner.ESSAY_A
        assert result.probability_essay_a_better is None
        assert "logprobs" not in server.received[0].body

    async def test_anthropic_gives_no_probability_and_its_confidence_is_not_one(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(probability=0.9))
        labels = {"provider": "anthropic", "mode": "sync", "outcome": "absent"}
        before = _sample("huleedu_llm_verdict_probabilities_total", **labels)
        result = await make_harness().compare(LLMProviderName.ANTHROPIC)
        assert (result.winner, result.confidence) == (ComparisonWinner.ESSAY_A, 4)
        assert result.probability_essay_a_better is None
        assert _sample("huleedu_llm_verdict_probabilities_total", **labels) == before + 1
        assert "logprobs" not in server.received[0].body

    async def test_rubric_calls_ask_for_no_logprobs(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        request = LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text="An answer.",
            callback_topic="r",
            llm_config=LLMConfig(provider=LLMProviderName.OPENAI),
        )
        await make_harness().answerer.answer_rubric(request, uuid.uuid4())
        assert "logprobs" not in server.received[0].body

    @pytest.mark.parametrize(
        ("status", "message"),
        [
            (400, "Unsupported parameter: 'logprobs' is not supported with this model."),
            (403, "You are not allowed to request logprobs from this model"),
        ],
    )
    async def test_a_model_refusing_logprobs_is_asked_again_without_them_and_remembered(
        self, server: FakeLLMServer, make_harness: Any, status: int, message: str
    ) -> None:
        server.script = _refuse_logprobs(status, message)
        harness = make_harness()
        first = await harness.compare(model="o4-mini")
        second = await harness.compare(model="o4-mini")
        assert first.winner is second.winner is ComparisonWinner.ESSAY_A
        assert first.probability_essay_a_better is None
        assert second.probability_essay_a_better is None
        asked = [bool(request.body.get("logprobs")) for request in server.received]
        assert asked == [True, False, False]
        # Another model still asks.
        third = await harness.compare(model="gpt-4o-mini")
        assert third.error_detail is None
        assert server.received[-1].body.get("logprobs") is True

    async def test_a_bad_request_unrelated_to_logprobs_is_still_a_validation_error(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(status=400, error_message="bad schema"))
        result = await make_harness().compare()
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.VALIDATION
        assert len(server.received) == 1


# A rubric long enough to make the static prefix cacheable for Sonnet and GPT models
# (about 3,500 tokens).
LONG_RUBRIC = " ".join(
    f"Criterion {i}: the essay weighs evidence on pollution, transport, business and residents, "
    f"and explains how point {i} supports its conclusion."
    for i in range(100)
)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestPromptCaching:
    async def test_anthropic_caches_the_static_prefix_and_prices_the_cached_tokens(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        harness = make_harness()
        sonnet = "claude-sonnet-4-6"
        first = await harness.compare(LLMProviderName.ANTHROPIC, model=sonnet, rubric=LONG_RUBRIC)
        second = await harness.compare(
            LLMProviderName.ANTHROPIC, model=sonnet, rubric=LONG_RUBRIC, essay_b="Another essay."
        )
        # One breakpoint closes the static head, a second essay A (which recurs in other
        # comparisons); essay B follows, unmarked.
        blocks = server.received[0].body["messages"][0]["content"]
        assert blocks[0]["cache_control"] == {"type": "ephemeral"}
        assert LONG_RUBRIC in blocks[0]["text"]
        assert DEVELOPED_ON_TOPIC not in blocks[0]["text"]
        assert DEVELOPED_ON_TOPIC in blocks[1]["text"]
        assert blocks[1]["cache_control"] == {"type": "ephemeral"}
        assert "Another essay." in server.received[1].body["messages"][0]["content"][2]["text"]
        assert "cache_control" not in blocks[2]
        assert first.usage.cache_write_tokens > 1024
        assert first.usage.cached_prompt_tokens == 0
        assert second.usage.cached_prompt_tokens == first.usage.cache_write_tokens
        assert second.usage.cache_write_tokens == 0
        price = harness.settings.price_table.price("anthropic", sonnet)
        assert price is not None
        usage = second.usage
        expected = (
            (usage.prompt_tokens - usage.cached_prompt_tokens) * price.input
            + usage.cached_prompt_tokens * price.cached_input
            + usage.completion_tokens * price.output
        ) / 1e6
        assert usage.estimated_cost_usd == pytest.approx(expected)
        assert first.usage.estimated_cost_usd is not None
        assert usage.estimated_cost_usd < first.usage.estimated_cost_usd

    async def test_a_short_static_prefix_gets_no_breakpoint(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        result = await make_harness().compare(LLMProviderName.ANTHROPIC)
        assert isinstance(server.received[0].body["messages"][0]["content"], str)
        assert result.usage.cached_prompt_tokens == result.usage.cache_write_tokens == 0

    async def test_openai_requests_sharing_the_prefix_share_a_cache_key_and_report_cached_tokens(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        harness = make_harness()
        first = await harness.compare(rubric=LONG_RUBRIC)
        second = await harness.compare(rubric=LONG_RUBRIC, essay_b="Another essay.")
        keys = {r.body["prompt_cache_key"] for r in server.received}
        assert len(keys) == 1
        assert first.usage.cached_prompt_tokens == 0
        assert second.usage.cached_prompt_tokens >= 1024
        assert second.usage.cached_prompt_tokens <= second.usage.prompt_tokens
        price = harness.settings.price_table.price("openai", "gpt-4o-mini")
        assert price is not None
        usage = second.usage
        expected = (
            (usage.prompt_tokens - usage.cached_prompt_tokens) * price.input
            + usage.cached_prompt_tokens * price.cached_input
            + usage.completion_tokens * price.output
        ) / 1e6
        assert usage.estimated_cost_usd == pytest.approx(expected)

    async def test_with_caching_off_no_key_is_sent_and_nothing_is_cached(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        harness = make_harness(llm_prompt_caching=False)
        await harness.compare(rubric=LONG_RUBRIC)
        second = await harness.compare(rubric=LONG_RUBRIC)
        await harness.compare(LLMProviderName.ANTHROPIC, rubric=LONG_RUBRIC)
        assert all("prompt_cache_key" not in r.body for r in server.received[:2])
        assert isinstance(server.received[2].body["messages"][0]["content"], str)
        assert second.usage.cached_prompt_tokens == 0


class TestCostAccounting:
    async def test_an_unpriced_model_costs_null_and_is_counted(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        labels = {"provider": "openai", "model": "my-local-llama", "mode": "sync"}
        before = _sample("huleedu_llm_unpriced_results_total", **labels)
        result = await make_harness().compare(model="my-local-llama")
        assert result.winner is not None
        assert result.usage.prompt_tokens > 0
        assert result.usage.estimated_cost_usd is None
        assert _sample("huleedu_llm_unpriced_results_total", **labels) == before + 1

    async def test_a_dated_snapshot_name_is_priced_as_its_model(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        result = await make_harness().compare(model="gpt-4o-mini-2024-07-18")
        assert result.usage.estimated_cost_usd is not None
        assert result.usage.estimated_cost_usd > 0

    async def test_the_answer_budget_is_sized_per_kind(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        harness = make_harness()
        labels = {"provider": "openai", "kind": "comparison"}
        count = _sample("huleedu_llm_answer_tokens_count", **labels)
        total = _sample("huleedu_llm_answer_tokens_sum", **labels)
        await harness.compare()
        await harness.compare(LLMProviderName.ANTHROPIC)
        openai_call, anthropic_call = server.received
        # Every answer's length is measured, to size the budgets from.
        assert _sample("huleedu_llm_answer_tokens_count", **labels) == count + 1
        assert _sample("huleedu_llm_answer_tokens_sum", **labels) == total + FAKE_COMPLETION_TOKENS
        assert openai_call.body["max_completion_tokens"] == harness.settings.max_tokens(
            "comparison"
        )
        assert anthropic_call.body["max_tokens"] == harness.settings.llm_comparison_max_tokens


class TestRetries:
    async def test_429_with_retry_after_is_retried_after_the_advised_delay(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(FakeReply(status=429, headers={"retry-after": "0.4"}))
        result = await make_harness().compare()
        assert result.winner is not None
        first, second = server.received
        assert second.at - first.at >= 0.4

    async def test_anthropic_429_then_success(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(FakeReply(status=429, headers={"retry-after": "0.1"}))
        result = await make_harness().compare(LLMProviderName.ANTHROPIC)
        assert result.winner is not None
        assert len(server.received) == 2

    async def test_500_then_success(self, server: FakeLLMServer, make_harness: Any) -> None:
        server.script = scripted(FakeReply(status=500))
        result = await make_harness().compare()
        assert result.winner is not None
        assert len(server.received) == 2

    async def test_a_timeout_is_retried(self, server: FakeLLMServer, make_harness: Any) -> None:
        server.script = scripted(FakeReply(delay=2.0))
        result = await make_harness().compare()
        assert result.winner is not None
        assert len(server.received) == 2

    async def test_persistent_timeouts_end_in_a_retryable_timeout_error(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(delay=2.0))
        result = await make_harness(llm_max_retries=1).compare()
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.TIMEOUT
        assert result.error_detail.retryable
        assert len(server.received) == 2

    async def test_malformed_json_is_asked_again_once_then_reported_as_parse_error(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(MALFORMED, MALFORMED)
        result = await make_harness().compare()
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.PARSE_ERROR
        assert len(server.received) == 2
        one_call = openai_usage(server.received[0].body, cached_tokens=0)["prompt_tokens"]
        assert result.usage.prompt_tokens == 2 * one_call  # both attempts are paid for

    async def test_one_malformed_answer_then_a_good_one_succeeds(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(MALFORMED)
        result = await make_harness().compare()
        assert result.winner is not None
        assert len(server.received) == 2


class TestNonRetryable:
    async def test_401_is_reported_at_once(self, server: FakeLLMServer, make_harness: Any) -> None:
        server.script = scripted(then=FakeReply(status=401))
        result = await make_harness().compare()
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.AUTHENTICATION
        assert not result.error_detail.retryable
        assert len(server.received) == 1
        assert "test-openai-key" not in result.model_dump_json()

    async def test_content_policy_rejection_is_reported_at_once(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(status=400, error_code="content_policy_violation"))
        result = await make_harness().compare()
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.CONTENT_POLICY
        assert len(server.received) == 1

    async def test_a_bad_request_is_reported_at_once_as_validation(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(then=FakeReply(status=400))
        result = await make_harness().compare(LLMProviderName.ANTHROPIC)
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.VALIDATION
        assert len(server.received) == 1


class TestCircuitBreaker:
    async def test_the_circuit_opens_after_repeated_failures_and_closes_after_its_cooldown(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        server.script = scripted(FakeReply(status=500), FakeReply(status=500))
        harness = make_harness(
            llm_max_retries=0, llm_circuit_failure_threshold=2, llm_circuit_cooldown_seconds=0.5
        )
        breaker = harness.panel.breaker(LLMProviderName.OPENAI)
        assert breaker is not None
        for _ in range(2):
            failed = await harness.compare()
            assert failed.error_detail is not None
            assert failed.error_detail.code is ErrorCode.PROVIDER_ERROR
        assert _state(breaker) is CircuitState.OPEN
        refused = await harness.compare()
        assert refused.error_detail is not None
        assert refused.error_detail.code is ErrorCode.CIRCUIT_OPEN
        assert len(server.received) == 2  # the open circuit kept the call off the wire
        providers = {p["name"]: p for p in harness.panel.describe()["providers"]}
        assert providers["openai"]["circuit"]["state"] == "open"

        async def attempt() -> LLMComparisonResultV1:
            result: LLMComparisonResultV1 = await harness.compare()
            return result

        recovered = await eventually(
            attempt, until=lambda r: r.winner is not None, interval=0.1, timeout=10
        )
        assert recovered.winner is not None
        assert _state(breaker) is CircuitState.CLOSED
        assert len(server.received) == 3


class TestRateLimit:
    async def test_a_burst_is_held_to_the_configured_rate(
        self, server: FakeLLMServer, make_harness: Any
    ) -> None:
        harness = make_harness(openai_requests_per_minute=4, llm_rate_limit_period_seconds=1.0)
        waits_before = (
            REGISTRY.get_sample_value(
                "huleedu_llm_rate_limit_waits_total", {"provider": "openai", "limit": "requests"}
            )
            or 0.0
        )
        results = await asyncio.gather(*(harness.compare() for _ in range(10)))
        assert all(r.winner is not None for r in results)
        times = sorted(r.at for r in server.received)
        assert len(times) == 10
        # A leaky bucket of 4 per second admits at most 4 + 4·t calls in any span of t seconds
        # (one call of slack for client-side jitter). Unlimited, all 10 would land at once.
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                assert j - i + 1 <= 4 + 4 * (times[j] - start) + 1
        assert times[-1] - times[0] >= 1.0
        waits_after = (
            REGISTRY.get_sample_value(
                "huleedu_llm_rate_limit_waits_total", {"provider": "openai", "limit": "requests"}
            )
            or 0.0
        )
        assert waits_after - waits_before >= 6
