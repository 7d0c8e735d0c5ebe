"""The dated price table and what a result cost.

Pure: the table is parsed from the JSON the service ships (`data/price_table.json`, loaded by
`config.py`); `estimate_cost` prices one result's token usage. A model missing from the table has
no price, and its cost is `None`, never 0: an estimate that silently says $0 is worse than none.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from common_core.events.llm import TokenUsage

_PER_MILLION = 1_000_000
# Snapshot suffixes the providers append to a model family's name: `gpt-4o-mini-2024-07-18`,
# `claude-sonnet-4-20250514`, `claude-3-5-haiku-latest`.
_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


class CostMode(StrEnum):
    """How a request was sent: one synchronous call, or through the provider's batch API."""

    SYNC = "sync"
    BATCH = "batch"


class ModelPrice(BaseModel):
    """One model's list prices, US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    cache_write: float = Field(ge=0)
    output: float = Field(ge=0)
    batch_discount: float = Field(default=0.0, ge=0, lt=1)
    # The shortest prefix the provider will cache (a shorter one is not marked for caching).
    min_cacheable_tokens: int = Field(default=1024, ge=0)
    aliases: tuple[str, ...] = ()


class PriceTable(BaseModel):
    """Prices per provider and model, with the date they were read and where from."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    as_of: str = Field(min_length=1)
    currency: str = "USD"
    sources: dict[str, str] = Field(default_factory=dict)
    providers: dict[str, dict[str, ModelPrice]]

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of a model (by name, alias, or a dated snapshot of either); None if unknown."""
        models = self.providers.get(provider)
        if not models:
            return None
        for name in dict.fromkeys((model, _SNAPSHOT_SUFFIX.sub("", model))):
            if name in models:
                return models[name]
            for price in models.values():
                if name in price.aliases:
                    return price
        return None


def estimate_cost(
    table: PriceTable,
    provider: str,
    model: str,
    usage: TokenUsage,
    mode: str = CostMode.SYNC,
) -> float | None:
    """US dollars for one result's tokens, or None when the model has no price.

    `usage.prompt_tokens` counts every input token; the cached and cache-write ones among them
    are priced at their own rates. In batch mode (`mode == "batch"`: the provider's batch API) the
    table's batch discount applies to every token, caching included (the providers stack them).
    """
    price = table.price(provider, model)
    if price is None:
        return None
    cached = min(usage.cached_prompt_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - written
    dollars = (
        uncached * price.input
        + cached * price.cached_input
        + written * price.cache_write
        + usage.completion_tokens * price.output
    ) / _PER_MILLION
    if mode == CostMode.BATCH:
        dollars *= 1 - price.batch_discount
    return round(dollars, 10)
