"""Typed settings of the LLM provider service (environment variables, no prefix)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from common_core.events.llm import LLMMode, LLMProviderName
from common_core.runtime.settings import ServiceSettings
from llm_provider_service.domain.heuristic_judge import HEURISTIC_MODEL
from llm_provider_service.domain.pricing import PriceTable

SERVICE_NAME = "llm_provider_service"

DEFAULT_MODELS: dict[LLMProviderName, str] = {
    LLMProviderName.OPENAI: "gpt-4o-mini",
    LLMProviderName.ANTHROPIC: "claude-haiku-4-5",
    LLMProviderName.HEURISTIC: HEURISTIC_MODEL,
}


# The dated price table shipped with the service (see the file for its sources).
PRICE_TABLE_PATH = Path(__file__).resolve().parent / "data" / "price_table.json"


def load_price_table(path: Path) -> PriceTable:
    """The price table in a JSON file (the shipped one, or an operator's own)."""
    return PriceTable.model_validate_json(path.read_bytes())


@functools.cache
def _cached_price_table(path: Path) -> PriceTable:
    return load_price_table(path)


class ProviderLimits(BaseModel):
    """Rate limits of one provider."""

    model_config = ConfigDict(frozen=True)

    requests_per_minute: int
    tokens_per_minute: int


class Settings(ServiceSettings):
    """Settings of the LLM provider service; secrets are SecretStr and never logged."""

    # Provider batches, their items, the callbacks' outbox and the shared rate budgets.
    service_database_name: str = "huleedu_llm_provider"
    protects_api: ClassVar[bool] = True
    auth_audience: str = "huleedu-llm"

    llm_default_provider: LLMProviderName | None = None
    llm_default_model: str | None = None

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None

    # One group per deployment; tests give each run its own so they never share rebalances.
    llm_consumer_group: str = Field(default=SERVICE_NAME, min_length=1)
    llm_max_in_flight: int = Field(default=32, ge=1, le=4096)
    llm_fetch_timeout_ms: int = Field(default=200, ge=10)
    llm_shutdown_grace_seconds: float = Field(default=8.0, ge=0)
    # Offsets are committed in batches at most this often (always on shutdown and rebalance).
    llm_commit_interval_seconds: float = Field(default=0.2, ge=0)
    llm_kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)

    openai_requests_per_minute: int = Field(default=500, ge=1)
    openai_tokens_per_minute: int = Field(default=200_000, ge=1)
    anthropic_requests_per_minute: int = Field(default=50, ge=1)
    anthropic_tokens_per_minute: int = Field(default=40_000, ge=1)
    # The window the per-minute limits are spread over; shorter only in tests.
    llm_rate_limit_period_seconds: float = Field(default=60.0, gt=0)

    llm_max_retries: int = Field(default=3, ge=0, le=20)
    llm_retry_initial_seconds: float = Field(default=0.5, ge=0)
    llm_retry_max_seconds: float = Field(default=20.0, ge=0)
    llm_retry_after_max_seconds: float = Field(default=60.0, ge=0)
    llm_request_timeout_seconds: float = Field(default=60.0, gt=0)
    # Answer budgets per kind. Providers count `max_tokens` against the tokens-per-minute quota
    # (and so does our limiter), so an oversized budget, not the provider, sets the pace. A
    # verdict is a JSON object with two or three sentences (about 60-120 tokens), a rubric answer
    # four scores and two to four sentences (about 100-200). LLM_DEFAULT_MAX_TOKENS, when set,
    # overrides both (as before); a request's `llm_config.max_tokens` overrides everything.
    llm_comparison_max_tokens: int = Field(default=256, ge=1)
    llm_rubric_max_tokens: int = Field(default=512, ge=1)
    llm_default_max_tokens: int | None = Field(default=None, ge=1)

    llm_circuit_failure_threshold: int = Field(default=5, ge=1)
    llm_circuit_cooldown_seconds: float = Field(default=30.0, ge=0)

    # Prompt caching of the static prefix: Anthropic `cache_control`, OpenAI `prompt_cache_key`
    # (off for an OpenAI-compatible server that rejects the parameter).
    llm_prompt_caching: bool = True
    # The verdict token's log-probabilities (OpenAI `logprobs`/`top_logprobs`, sync and batch):
    # the judge's probability that essay A is better. A model that refuses them (reasoning
    # models) is asked again without them in sync mode; in batch mode turn them off for it.
    llm_openai_logprobs: bool = True
    llm_openai_top_logprobs: int = Field(default=5, ge=1, le=20)
    # The price table: the shipped one unless LLM_PRICE_TABLE_PATH names another JSON file.
    llm_price_table_path: Path = PRICE_TABLE_PATH

    # Batch mode (provider batch APIs): the mode of requests whose llm_config names none; how
    # long requests are collected and how many go into one provider batch; polling backoff.
    llm_default_mode: LLMMode = LLMMode.SYNC
    llm_batch_window_seconds: float = Field(default=5.0, ge=0)
    llm_batch_max_size: int = Field(default=1000, ge=1, le=50_000)
    llm_batch_poll_initial_seconds: float = Field(default=10.0, gt=0)
    llm_batch_poll_max_seconds: float = Field(default=300.0, gt=0)
    llm_batch_tick_seconds: float = Field(default=1.0, gt=0)
    # A chunk whose submission was not recorded within this time (a crash, a lost answer) is
    # reconciled against the provider's list of batches before it is submitted again; it must
    # exceed the request timeout so a live submission is never taken for a lost one.
    llm_batch_submit_lease_seconds: float = Field(default=300.0, gt=0)
    # Answered requests are kept (without their text) this long to de-duplicate redeliveries.
    llm_batch_retention_hours: float = Field(default=168.0, gt=0)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Rate budgets: `local` (each process its own, aiolimiter) or `shared` (one budget per
    # provider in the service's PostgreSQL, for every instance together).
    llm_rate_limit_scope: Literal["local", "shared"] = "shared"
    # Instances of the service a deployment runs: while the shared budget's database cannot be
    # reached, each instance falls back to this share of the limits (fails closed: together
    # they never exceed the quota).
    llm_expected_instances: int = Field(default=1, ge=1, le=1000)
    # Estimated spend (USD) per hour of all instances together above which the
    # LLMSpendOverBudget alert fires; exported as huleedu_llm_spend_alert_usd_per_hour (0: unset,
    # no alert).
    llm_spend_alert_usd_per_hour: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _pick_default_provider(self) -> Settings:
        if self.llm_default_provider is None:
            if self.openai_api_key is not None:
                chosen = LLMProviderName.OPENAI
            elif self.anthropic_api_key is not None:
                chosen = LLMProviderName.ANTHROPIC
            else:
                chosen = LLMProviderName.HEURISTIC
            object.__setattr__(self, "llm_default_provider", chosen)
        _cached_price_table(self.llm_price_table_path)  # a bad table fails at start, not later
        if self.llm_batch_submit_lease_seconds <= self.llm_request_timeout_seconds:
            raise ValueError(
                "LLM_BATCH_SUBMIT_LEASE_SECONDS must exceed LLM_REQUEST_TIMEOUT_SECONDS"
            )
        return self

    @property
    def price_table(self) -> PriceTable:
        """The price table read from `llm_price_table_path` (read once per path)."""
        return _cached_price_table(self.llm_price_table_path)

    def max_tokens(self, kind: str) -> int:
        """The answer budget of a request kind (`comparison` or `rubric`) naming none."""
        if self.llm_default_max_tokens is not None:
            return self.llm_default_max_tokens
        if kind == "rubric":
            return self.llm_rubric_max_tokens
        return self.llm_comparison_max_tokens

    def verdict_top_logprobs(self, provider: LLMProviderName) -> int | None:
        """How many alternatives of the verdict token to ask a provider for (None: not asked;
        only OpenAI and compatible servers return log-probabilities)."""
        if provider is LLMProviderName.OPENAI and self.llm_openai_logprobs:
            return self.llm_openai_top_logprobs
        return None

    @property
    def default_provider(self) -> LLMProviderName:
        """The provider used when a request does not name one."""
        assert self.llm_default_provider is not None  # set by the validator
        return self.llm_default_provider

    def default_model(self, provider: LLMProviderName) -> str:
        """The model used when a request names none (the heuristic has only one)."""
        if provider is LLMProviderName.HEURISTIC:
            return HEURISTIC_MODEL
        if provider is self.default_provider and self.llm_default_model:
            return self.llm_default_model
        return DEFAULT_MODELS[provider]

    def limits(self, provider: LLMProviderName) -> ProviderLimits | None:
        """Rate limits of a network provider (None for the heuristic)."""
        if provider is LLMProviderName.OPENAI:
            return ProviderLimits(
                requests_per_minute=self.openai_requests_per_minute,
                tokens_per_minute=self.openai_tokens_per_minute,
            )
        if provider is LLMProviderName.ANTHROPIC:
            return ProviderLimits(
                requests_per_minute=self.anthropic_requests_per_minute,
                tokens_per_minute=self.anthropic_tokens_per_minute,
            )
        return None
