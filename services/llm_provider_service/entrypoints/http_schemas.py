"""Typed HTTP response models of the LLM provider API (they generate the OpenAPI document).

`JudgePanel.describe` builds a plain dict; `validate_response` checks it against these models,
so the document describes exactly what the route answers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from common_core.events.llm import LLMMode, LLMProviderName
from llm_provider_service.domain.circuit_breaker import CircuitState


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CircuitOut(_Reply):
    """A provider's circuit breaker: open after `failure_threshold` failures in a row."""

    state: CircuitState
    consecutive_failures: int
    failure_threshold: int
    cooldown_seconds: float


class LimitsOut(_Reply):
    """A provider's rate limits, as this process spends them."""

    requests_per_minute: int
    tokens_per_minute: int
    period_seconds: float


class ProviderOut(_Reply):
    """One provider: configured or not, its default model, its breaker and limits when it has
    them (the heuristic judge has neither)."""

    name: LLMProviderName
    configured: bool
    default_model: str
    circuit: CircuitOut | None = None
    limits: LimitsOut | None = None


class ProvidersOut(_Reply):
    """The configured providers, the defaults and the limits (never a key)."""

    default_provider: LLMProviderName
    default_model: str
    max_in_flight: int = Field(description="Requests this instance works on at once, at most.")
    default_mode: LLMMode
    rate_limit_scope: Literal["local", "shared"] = Field(
        description="`shared`: the limits are spent across instances through the database."
    )
    providers: list[ProviderOut]


class RequestsErasedOut(_Reply):
    """What an erasure removed of a CJ batch's requests."""

    batch_id: str = Field(description="The CJ batch id (the comparison requests' Kafka key).")
    waiting_requests: int = Field(
        description="Batch-mode requests deleted before any provider got them."
    )
    in_flight_requests: int = Field(
        description="Batch-mode requests already at a provider: kept until answered, when their "
        "text is cleared."
    )
