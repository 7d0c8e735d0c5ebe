"""The shared rate budget on the real PostgreSQL: grants while the window has room (one sum per
budget), and the wait until the oldest grants leave it once it is full."""

from __future__ import annotations

import pytest

from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from llm_provider_service.adapters.postgres_quota import PostgresRateBudget
from llm_provider_service.application.resilience import ProviderRateLimiter
from llm_provider_service.entrypoints.runtime import VERSIONS_DIR

pytestmark = pytest.mark.integration

PERIOD = 60.0


async def test_grants_fit_until_the_window_is_full_then_say_how_long_to_wait(
    database_url: str,
) -> None:
    await run_migrations(database_url, [VERSIONS_DIR])
    engine = create_engine(database_url, pool_size=2)
    try:
        budget = PostgresRateBudget(
            create_session_factory(engine),
            "quota-test",
            requests=3,
            tokens=1_000,
            period_seconds=PERIOD,
            fallback=ProviderRateLimiter(
                "quota-test", requests=3, tokens=1_000, period_seconds=PERIOD
            ),
        )
        needs = {"quota-test:requests": 1, "quota-test:tokens": 300}
        assert [await budget._try(needs) for _ in range(3)] == [{}, {}, {}]
        waits = await budget._try(needs)
        # Both budgets are full (3 requests, 900 + 300 tokens > 1,000): each waits for the oldest
        # grant to leave the 60 s window, and nothing more was granted.
        assert set(waits) == {"quota-test:requests", "quota-test:tokens"}
        assert all(0 < wait <= PERIOD for wait in waits.values())
        assert await budget._try({"quota-test:requests": 1, "quota-test:tokens": 1}) == {
            "quota-test:requests": pytest.approx(waits["quota-test:requests"], abs=5)
        }
    finally:
        await engine.dispose()
