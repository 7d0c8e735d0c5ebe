"""The price table and the cost of a result's tokens."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common_core.events.llm import TokenUsage
from llm_provider_service.config import PRICE_TABLE_PATH, load_price_table
from llm_provider_service.domain.pricing import CostMode, ModelPrice, PriceTable, estimate_cost

TABLE = PriceTable(
    as_of="2026-12-01",
    providers={
        "anthropic": {
            "sonnet": ModelPrice(
                input=3.0, cached_input=0.3, cache_write=3.75, output=15.0, batch_discount=0.5
            )
        },
        "openai": {
            "mini": ModelPrice(
                input=0.15,
                cached_input=0.075,
                cache_write=0.15,
                output=0.6,
                batch_discount=0.5,
                aliases=("mini-latest-alias",),
            )
        },
    },
)


class TestEstimateCost:
    def test_uncached_tokens_cost_the_input_and_output_prices(self) -> None:
        usage = TokenUsage(prompt_tokens=1_000_000, completion_tokens=100_000)
        assert estimate_cost(TABLE, "anthropic", "sonnet", usage) == pytest.approx(3.0 + 1.5)

    def test_cached_and_cache_written_tokens_cost_their_own_prices(self) -> None:
        usage = TokenUsage(
            prompt_tokens=1_000_000,
            cached_prompt_tokens=600_000,
            cache_write_tokens=300_000,
            completion_tokens=0,
        )
        expected = 0.1 * 3.0 + 0.6 * 0.3 + 0.3 * 3.75
        assert estimate_cost(TABLE, "anthropic", "sonnet", usage) == pytest.approx(expected)

    def test_batch_mode_takes_the_batch_discount_off_every_token(self) -> None:
        usage = TokenUsage(prompt_tokens=2000, cached_prompt_tokens=1500, completion_tokens=40)
        sync = estimate_cost(TABLE, "openai", "mini", usage, CostMode.SYNC)
        batch = estimate_cost(TABLE, "openai", "mini", usage, "batch")
        assert sync is not None
        assert batch == pytest.approx(sync * 0.5)

    def test_an_unknown_model_or_provider_has_no_cost_not_zero(self) -> None:
        usage = TokenUsage(prompt_tokens=1000, completion_tokens=10)
        assert estimate_cost(TABLE, "openai", "gpt-99", usage) is None
        assert estimate_cost(TABLE, "mistral", "mini", usage) is None
        assert estimate_cost(TABLE, "anthropic", "mini", usage) is None

    def test_dated_snapshots_and_aliases_are_priced_as_their_model(self) -> None:
        usage = TokenUsage(prompt_tokens=1000)
        expected = estimate_cost(TABLE, "openai", "mini", usage)
        assert expected is not None
        assert estimate_cost(TABLE, "openai", "mini-2024-07-18", usage) == expected
        assert estimate_cost(TABLE, "anthropic", "sonnet-20250514", usage) is not None
        assert estimate_cost(TABLE, "openai", "mini-latest-alias", usage) == expected

    @given(
        prompt=st.integers(0, 10**7),
        cached=st.integers(0, 10**7),
        written=st.integers(0, 10**7),
        completion=st.integers(0, 10**6),
    )
    def test_caching_never_costs_more_than_the_uncached_read(
        self, prompt: int, cached: int, written: int, completion: int
    ) -> None:
        cached_usage = TokenUsage(
            prompt_tokens=prompt, cached_prompt_tokens=cached, completion_tokens=completion
        )
        plain = TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
        with_cache = estimate_cost(TABLE, "anthropic", "sonnet", cached_usage)
        without = estimate_cost(TABLE, "anthropic", "sonnet", plain)
        assert with_cache is not None
        assert without is not None
        assert 0 <= with_cache <= without + 1e-9
        # Cached and written counts beyond the prompt are clamped, never negative input.
        odd = TokenUsage(
            prompt_tokens=prompt, cached_prompt_tokens=cached, cache_write_tokens=written
        )
        cost = estimate_cost(TABLE, "anthropic", "sonnet", odd)
        assert cost is not None
        assert cost >= 0


class TestShippedTable:
    def test_it_is_dated_sourced_and_prices_the_default_models(self) -> None:
        table = load_price_table(PRICE_TABLE_PATH)
        assert table.as_of
        assert {"anthropic", "openai"} <= set(table.sources)
        for provider, model in (
            ("openai", "gpt-4o-mini"),
            ("openai", "gpt-4o"),
            ("openai", "gpt-4.1-mini"),
            ("anthropic", "claude-haiku-4-5"),
            ("anthropic", "claude-sonnet-4"),
            ("anthropic", "claude-3-5-haiku"),
            ("heuristic", "heuristic-features-v2"),
        ):
            assert table.price(provider, model) is not None, model

    def test_anthropic_cache_writes_cost_125_percent_and_reads_10_percent(self) -> None:
        table = load_price_table(PRICE_TABLE_PATH)
        for model, price in table.providers["anthropic"].items():
            assert price.cache_write == pytest.approx(1.25 * price.input), model
            assert price.cached_input == pytest.approx(0.1 * price.input), model
            assert price.batch_discount == 0.5

    def test_openai_cached_input_is_discounted_and_writes_cost_nothing_extra(self) -> None:
        table = load_price_table(PRICE_TABLE_PATH)
        four_o = table.price("openai", "gpt-4o")
        assert four_o is not None
        assert four_o.cached_input == pytest.approx(0.5 * four_o.input)
        for model, price in table.providers["openai"].items():
            assert price.cached_input < price.input, model
            assert price.cache_write == price.input, model
