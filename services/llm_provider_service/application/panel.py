"""The panel of judges this service runs: one per configured provider, with its resilience."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common_core.events.llm import LLMProviderName
from llm_provider_service.application.judging import ChatJudge, HeuristicJudge
from llm_provider_service.application.ports import ChatModel, Judge, RateBudget
from llm_provider_service.application.resilience import (
    ProviderRateLimiter,
    ResilientChatModel,
    RetryPolicy,
)
from llm_provider_service.config import ProviderLimits, Settings
from llm_provider_service.domain.circuit_breaker import CircuitBreaker
from llm_provider_service.domain.prompt_caching import DEFAULT_MIN_CACHEABLE_TOKENS, CacheTerms


@dataclass(frozen=True, slots=True)
class PanelSeat:
    """One provider: its judge, and for network providers its breaker and limits."""

    provider: LLMProviderName
    judge: Judge
    breaker: CircuitBreaker | None = None
    limits: ProviderLimits | None = None


class JudgePanel:
    """The judges by provider, and a description of them for operators (never keys)."""

    def __init__(self, settings: Settings, seats: Mapping[LLMProviderName, PanelSeat]) -> None:
        self._settings = settings
        self._seats = dict(seats)

    @property
    def judges(self) -> dict[LLMProviderName, Judge]:
        """Judge by provider name."""
        return {name: seat.judge for name, seat in self._seats.items()}

    def breaker(self, provider: LLMProviderName) -> CircuitBreaker | None:
        """A provider's circuit breaker (None for the heuristic or an unconfigured provider)."""
        seat = self._seats.get(provider)
        return seat.breaker if seat else None

    def describe(self) -> dict[str, Any]:
        """Configured providers, the default, circuit states and limits."""
        providers = []
        for name in LLMProviderName:
            seat = self._seats.get(name)
            entry: dict[str, Any] = {
                "name": name.value,
                "configured": seat is not None,
                "default_model": self._settings.default_model(name),
            }
            if seat is not None and seat.breaker is not None:
                entry["circuit"] = {
                    "state": seat.breaker.state.value,
                    "consecutive_failures": seat.breaker.consecutive_failures,
                    "failure_threshold": self._settings.llm_circuit_failure_threshold,
                    "cooldown_seconds": self._settings.llm_circuit_cooldown_seconds,
                }
            if seat is not None and seat.limits is not None:
                entry["limits"] = {
                    "requests_per_minute": seat.limits.requests_per_minute,
                    "tokens_per_minute": seat.limits.tokens_per_minute,
                    "period_seconds": self._settings.llm_rate_limit_period_seconds,
                }
            providers.append(entry)
        return {
            "default_provider": self._settings.default_provider.value,
            "default_model": self._settings.default_model(self._settings.default_provider),
            "max_in_flight": self._settings.llm_max_in_flight,
            "default_mode": self._settings.llm_default_mode.value,
            "rate_limit_scope": self._settings.llm_rate_limit_scope,
            "providers": providers,
        }


BudgetFactory = Callable[[LLMProviderName, ProviderLimits, RateBudget], RateBudget]


def build_panel(
    settings: Settings,
    chat_models: Mapping[LLMProviderName, ChatModel],
    *,
    clock: Callable[[], float] = time.monotonic,
    shared_budget: BudgetFactory | None = None,
) -> JudgePanel:
    """Seat the heuristic and every given chat model behind limits, a breaker and retries.

    The limits are this process's own (aiolimiter), or with `shared_budget` the budget it makes
    from the provider, its limits and the process's own limiter, its fallback while the shared
    budget cannot be read. The fallback allows this instance its share of the limits
    (`LLM_EXPECTED_INSTANCES`), so N instances cut off from the database spend the quota once
    between them, not N times."""
    seats = {LLMProviderName.HEURISTIC: PanelSeat(LLMProviderName.HEURISTIC, HeuristicJudge())}
    policy = RetryPolicy(
        max_retries=settings.llm_max_retries,
        initial_seconds=settings.llm_retry_initial_seconds,
        max_seconds=settings.llm_retry_max_seconds,
        retry_after_max_seconds=settings.llm_retry_after_max_seconds,
    )
    for name, chat in chat_models.items():
        limits = settings.limits(name)
        assert limits is not None, f"{name} is not a network provider"
        breaker = CircuitBreaker(
            failure_threshold=settings.llm_circuit_failure_threshold,
            cooldown_seconds=settings.llm_circuit_cooldown_seconds,
            clock=clock,
        )
        share = 1 if shared_budget is None else settings.llm_expected_instances
        limiter = ProviderRateLimiter(
            name.value,
            requests=max(1, limits.requests_per_minute // share),
            tokens=max(1, limits.tokens_per_minute // share),
            period_seconds=settings.llm_rate_limit_period_seconds,
        )
        budget: RateBudget = limiter
        if shared_budget is not None:
            budget = shared_budget(name, limits, limiter)
        resilient = ResilientChatModel(
            name.value, chat, breaker=breaker, limiter=budget, policy=policy
        )
        terms = model_cache_terms(settings, name) if settings.llm_prompt_caching else None
        judge = ChatJudge(
            name.value,
            resilient,
            cache_terms=terms,
            top_logprobs=settings.verdict_top_logprobs(name),
        )
        seats[name] = PanelSeat(name, judge, breaker, limits)
    return JudgePanel(settings, seats)


def model_cache_terms(settings: Settings, provider: LLMProviderName) -> Callable[[str], CacheTerms]:
    """What prompt caching costs per model of a provider, from the price table: the minimum
    cacheable prefix and the write and read prices relative to input (for a model the table does
    not know: the providers' common minimum, 1024 tokens, at Anthropic's ratios)."""
    table = settings.price_table

    def terms(model: str) -> CacheTerms:
        price = table.price(provider.value, model)
        if price is None or price.input <= 0:
            return CacheTerms(DEFAULT_MIN_CACHEABLE_TOKENS)
        return CacheTerms(
            price.min_cacheable_tokens,
            write_ratio=price.cache_write / price.input,
            read_ratio=price.cached_input / price.input,
        )

    return terms
