"""Requests become exactly one result payload: a verdict or an error_detail."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from common_core.errors import ErrorCode
from common_core.events.llm import (
    ComparisonEssay,
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    TokenUsage,
)
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.judging import HeuristicJudge, comparison_prompt
from llm_provider_service.application.ports import Judge, Judgement, ModelChoice
from llm_provider_service.config import Settings
from llm_provider_service.domain.answers import ComparisonAnswer, RubricAnswer
from llm_provider_service.domain.errors import ContentPolicyError
from llm_provider_service.testing.sample_essays import (
    DEVELOPED_ON_TOPIC,
    INJECTION_ATTEMPTS,
    INSTRUCTIONS,
    ONE_LINE,
)


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "LLM_DEFAULT_PROVIDER",
        "LLM_DEFAULT_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)


class RefusingJudge:
    """A judge whose provider refuses the content."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        raise ContentPolicyError("refused")

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        raise ContentPolicyError("refused")


class CountingJudge:
    """A judge that always prefers essay B and reports token usage."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        answer = ComparisonAnswer(winner=ComparisonWinner.ESSAY_B, justification="B.", confidence=2)
        usage = TokenUsage(prompt_tokens=1000, completion_tokens=100)
        return Judgement(answer, choice.model, comparison_prompt(request), usage)

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        raise AssertionError("not used")


def _comparison(
    provider: LLMProviderName | None = None, a: str = DEVELOPED_ON_TOPIC
) -> LLMComparisonRequestV1:
    return LLMComparisonRequestV1(
        request_id=uuid.uuid4(),
        essay_a=ComparisonEssay(essay_id="e1", text_content=a),
        essay_b=ComparisonEssay(essay_id="e2", text_content=ONE_LINE),
        essay_instructions=INSTRUCTIONS,
        llm_config=LLMConfig(provider=provider),
        callback_topic="x.results",
        request_metadata={"batch_id": "b1", "pair_id": 7},
    )


def _answerer(
    judges: dict[LLMProviderName, Judge], *, openai_api_key: str | None = None
) -> RequestAnswerer:
    # Only the key a test names is set: the others stay whatever the environment says.
    if openai_api_key is None:
        return RequestAnswerer(Settings(), judges)
    return RequestAnswerer(Settings(openai_api_key=SecretStr(openai_api_key)), judges)


class TestComparisons:
    async def test_the_heuristic_answers_by_default_without_keys(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        request = _comparison()
        result = await answerer.answer_comparison(request, uuid.uuid4())
        assert result.provider == "heuristic"
        assert result.winner is ComparisonWinner.ESSAY_A
        assert result.request_metadata == {"batch_id": "b1", "pair_id": 7}
        assert result.prompt_version == "comparison_v2"
        assert result.prompt_sha256 == comparison_prompt(request).sha256
        assert not result.injection_suspected
        # The heuristic's calibrated margin: the developed essay over the one-liner.
        assert result.probability_essay_a_better is not None
        assert result.probability_essay_a_better > 0.9

    async def test_a_provider_refusal_becomes_an_error_detail_with_its_code(self) -> None:
        answerer = _answerer({LLMProviderName.OPENAI: RefusingJudge()}, openai_api_key="k")
        correlation = uuid.uuid4()
        result = await answerer.answer_comparison(_comparison(), correlation)
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.CONTENT_POLICY
        assert result.error_detail.correlation_id == correlation
        assert result.winner is None

    async def test_an_unconfigured_provider_is_reported_not_raised(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        result = await answerer.answer_comparison(
            _comparison(LLMProviderName.ANTHROPIC), uuid.uuid4()
        )
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.PROVIDER_UNAVAILABLE

    async def test_injection_attempts_are_flagged_in_the_result(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        result = await answerer.answer_comparison(
            _comparison(a=INJECTION_ATTEMPTS[0]), uuid.uuid4()
        )
        assert result.injection_suspected

    async def test_usage_is_carried_into_the_result(self) -> None:
        answerer = _answerer({LLMProviderName.OPENAI: CountingJudge()}, openai_api_key="k")
        result = await answerer.answer_comparison(_comparison(), uuid.uuid4())
        assert result.usage.prompt_tokens == 1000
        assert result.model == "gpt-4o-mini"
        # gpt-4o-mini: $0.15 per million input tokens, $0.60 per million output tokens.
        assert result.usage.estimated_cost_usd == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)

    async def test_an_unpriced_model_gets_a_null_cost_never_zero(self) -> None:
        answerer = _answerer({LLMProviderName.OPENAI: CountingJudge()}, openai_api_key="k")
        request = _comparison().model_copy(
            update={"llm_config": LLMConfig(provider=LLMProviderName.OPENAI, model="vllm-local")}
        )
        result = await answerer.answer_comparison(request, uuid.uuid4())
        assert result.usage.prompt_tokens == 1000
        assert result.usage.estimated_cost_usd is None

    async def test_the_heuristic_costs_zero_because_its_price_is_zero(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        result = await answerer.answer_comparison(_comparison(), uuid.uuid4())
        assert result.usage.estimated_cost_usd == 0.0


class TestRubric:
    async def test_heuristic_rubric_scores_are_returned(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        request = LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text=DEVELOPED_ON_TOPIC,
            question_text=INSTRUCTIONS,
            callback_topic="x.rubric",
        )
        result = await answerer.answer_rubric(request, uuid.uuid4())
        assert result.scores is not None
        assert result.overall is not None
        assert result.feedback is not None
        assert "no language model" in result.feedback


class TestSettings:
    def test_default_provider_follows_the_configured_keys(self) -> None:
        assert Settings().default_provider is LLMProviderName.HEURISTIC
        anthropic_only = Settings(anthropic_api_key=SecretStr("a"))
        assert anthropic_only.default_provider is LLMProviderName.ANTHROPIC
        both = Settings(openai_api_key=SecretStr("o"), anthropic_api_key=SecretStr("a"))
        assert both.default_provider is LLMProviderName.OPENAI
        explicit = Settings(
            openai_api_key=SecretStr("o"), llm_default_provider=LLMProviderName.HEURISTIC
        )
        assert explicit.default_provider is LLMProviderName.HEURISTIC

    def test_keys_never_show_in_the_settings_repr(self) -> None:
        settings = Settings(openai_api_key=SecretStr("sk-very-secret"))
        assert "sk-very-secret" not in repr(settings)
        assert "sk-very-secret" not in str(settings.model_dump())

    def test_answer_budgets_are_sized_per_kind_unless_one_default_is_set(self) -> None:
        settings = Settings()
        assert settings.max_tokens("comparison") == settings.llm_comparison_max_tokens
        assert settings.max_tokens("rubric") == settings.llm_rubric_max_tokens
        assert settings.max_tokens("comparison") < settings.max_tokens("rubric")
        legacy = Settings(llm_default_max_tokens=800)
        assert legacy.max_tokens("comparison") == legacy.max_tokens("rubric") == 800

    def test_the_shipped_price_table_is_dated_and_loaded(self) -> None:
        table = Settings().price_table
        assert table.as_of
        assert table.price("openai", "gpt-4o-mini") is not None


class TestModelLabels:
    async def test_a_heuristic_result_names_the_heuristic_model_whatever_was_asked(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: HeuristicJudge()})
        request = _comparison(LLMProviderName.HEURISTIC).model_copy(
            update={"llm_config": LLMConfig(provider=LLMProviderName.HEURISTIC, model="gpt-4o")}
        )
        result = await answerer.answer_comparison(request, uuid.uuid4())
        assert result.model == "heuristic-features-v2"


class BrokenJudge:
    """A judge with a bug."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        raise RuntimeError("bug")

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        raise RuntimeError("bug")


class TestUnexpectedFailures:
    async def test_a_bug_in_a_judge_still_ends_in_one_internal_error_result(self) -> None:
        answerer = _answerer({LLMProviderName.HEURISTIC: BrokenJudge()})
        result = await answerer.answer_comparison(_comparison(), uuid.uuid4())
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.INTERNAL
        assert "bug" not in result.error_detail.message  # no internals leak into events
