"""Seating the judges: the rate budget each network provider gets."""

from __future__ import annotations

from common_core.events.llm import LLMProviderName
from llm_provider_service.application.panel import build_panel
from llm_provider_service.application.ports import ChatReply, ChatRequest, RateBudget
from llm_provider_service.application.resilience import ProviderRateLimiter
from llm_provider_service.config import ProviderLimits, Settings


class SilentChat:
    """A chat model that is never called here."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        raise AssertionError("not called")


def _fallbacks(settings: Settings) -> dict[LLMProviderName, ProviderRateLimiter]:
    """The in-process limiter each provider's shared budget falls back on."""
    seen: dict[LLMProviderName, ProviderRateLimiter] = {}

    def shared(name: LLMProviderName, _limits: ProviderLimits, own: RateBudget) -> RateBudget:
        assert isinstance(own, ProviderRateLimiter)
        seen[name] = own
        return own

    build_panel(settings, {LLMProviderName.OPENAI: SilentChat()}, shared_budget=shared)
    return seen


class TestTheFallbackShare:
    def test_one_instance_falls_back_to_the_whole_quota(self) -> None:
        limiter = _fallbacks(Settings(openai_requests_per_minute=500))[LLMProviderName.OPENAI]
        assert limiter.requests.max_rate == 500

    def test_each_of_four_instances_falls_back_to_a_quarter_of_the_quota(self) -> None:
        settings = Settings(
            openai_requests_per_minute=500,
            openai_tokens_per_minute=200_000,
            llm_expected_instances=4,
        )
        limiter = _fallbacks(settings)[LLMProviderName.OPENAI]
        assert (limiter.requests.max_rate, limiter.tokens.max_rate) == (125, 50_000)
