"""The shared rate budget on the real PostgreSQL: grants while the window has room and the wait
until the oldest grants leave it once it is full; concurrent calls of two instances (one by one,
or sharing round trips) never grant past the limit; with the database away, the fallback."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from common_core.testing import eventually
from devstack.processes import free_port
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


async def test_calls_made_while_the_first_call_has_not_committed_grant_no_more_than_the_limit(
    database_url: str,
) -> None:
    """The budget's rows are created by the first call. Calls made while that transaction is
    still open (held here by a lock on the grants table) must wait for it, not find no rows to
    lock and grant unchecked beside it."""
    await run_migrations(database_url, [VERSIONS_DIR])
    engine = create_engine(database_url, pool_size=12)
    name = f"quota-{uuid.uuid4().hex[:8]}"
    try:
        budget = PostgresRateBudget(
            create_session_factory(engine),
            name,
            requests=2,
            tokens=1_000_000,
            period_seconds=PERIOD,
            fallback=ProviderRateLimiter(name, requests=2, tokens=1_000_000, period_seconds=PERIOD),
        )
        needs = {f"{name}:requests": 1, f"{name}:tokens": 1}
        async with engine.connect() as blocker:
            await blocker.execute(text("LOCK TABLE rate_grants IN ACCESS EXCLUSIVE MODE"))
            first = asyncio.create_task(budget._try(needs))
            await eventually(lambda: _waiting(engine), until=lambda n: n >= 1, what="first call")
            others = [asyncio.create_task(budget._try(needs)) for _ in range(9)]
            await eventually(lambda: _waiting(engine), until=lambda n: n >= 10, what="all waiting")
            await blocker.rollback()
        answers = await asyncio.gather(first, *others)
        assert sum(1 for waits in answers if not waits) == 2
    finally:
        await engine.dispose()


async def test_concurrent_callers_of_two_instances_grant_exactly_the_limit(
    database_url: str,
) -> None:
    """Two instances (own engines, own pools) ask at once, many times over the limit: the grants
    together are the limit, and the grants table holds exactly those (nothing granted twice or
    beside the lock)."""
    await run_migrations(database_url, [VERSIONS_DIR])
    engines = [create_engine(database_url, pool_size=8) for _ in range(2)]
    name = f"quota-{uuid.uuid4().hex[:8]}"
    limit = 5
    try:
        budgets = [
            PostgresRateBudget(
                create_session_factory(engine),
                name,
                requests=limit,
                tokens=1_000_000,
                period_seconds=PERIOD,
                fallback=ProviderRateLimiter(
                    name, requests=limit, tokens=1_000_000, period_seconds=PERIOD
                ),
            )
            for engine in engines
        ]
        needs = {f"{name}:requests": 1, f"{name}:tokens": 10}
        answers = await asyncio.gather(*(b._try(needs) for b in budgets for _ in range(12)))
        async with engines[0].connect() as connection:
            granted = (
                await connection.execute(
                    text(
                        "SELECT budget, count(*), sum(amount) FROM rate_grants"
                        " WHERE budget LIKE :name GROUP BY budget ORDER BY budget"
                    ),
                    {"name": f"{name}:%"},
                )
            ).all()
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(1 for waits in answers if not waits) == limit
    assert all(set(waits) == {f"{name}:requests"} for waits in answers if waits)
    assert [tuple(row) for row in granted] == [
        (f"{name}:requests", limit, limit),
        (f"{name}:tokens", limit, 10 * limit),
    ]


async def test_calls_waiting_at_once_share_a_round_trip_and_never_pass_the_limit(
    database_url: str,
) -> None:
    """Two instances' calls through `acquire`: each instance grants the calls waiting at once in
    one round trip (one grant row per budget), as many as fit; the rest wait for the window."""
    await run_migrations(database_url, [VERSIONS_DIR])
    engines = [create_engine(database_url, pool_size=2) for _ in range(2)]
    name = f"quota-{uuid.uuid4().hex[:8]}"
    limit = 7
    budgets = [
        PostgresRateBudget(
            create_session_factory(engine),
            name,
            requests=limit,
            tokens=1_000_000,
            period_seconds=PERIOD,
            fallback=ProviderRateLimiter(name, requests=0, tokens=0, period_seconds=PERIOD),
        )
        for engine in engines
    ]
    calls = [asyncio.create_task(b.acquire(10)) for b in budgets for _ in range(6)]
    try:
        await eventually(
            lambda: _granted(engines[0], name),
            until=lambda rows: rows.get(f"{name}:requests", (0, 0))[1] >= limit,
            what="the limit granted",
        )
        await eventually(
            lambda: asyncio.sleep(0, sum(c.done() for c in calls)),
            until=lambda done: done == limit,
            what="the granted calls returned",
        )
        granted = await _granted(engines[0], name)
    finally:
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        for engine in engines:
            await engine.dispose()
    assert sum(c.done() and not c.cancelled() for c in calls) == limit
    rows, requests = granted[f"{name}:requests"]
    assert requests == limit
    assert granted[f"{name}:tokens"][1] == 10 * limit
    # One round trip per instance for its six waiting calls (the second instance's group does
    # not fit whole, so its first call alone, then the rest as they fit): far fewer rows than calls.
    assert rows < limit


class RecordingBudget:
    """A fallback `RateBudget` that grants at once and records what it granted."""

    def __init__(self) -> None:
        self.granted: list[int] = []

    async def acquire(self, estimated_tokens: int) -> None:
        """Grant, and remember the tokens."""
        self.granted.append(estimated_tokens)


async def test_with_the_database_away_every_waiting_call_falls_back_to_the_instance_share(
    database_url: str,
) -> None:
    """Calls that shared a round trip which failed each fall back to the instance's own share
    (quota / expected instances): none is lost, none granted unchecked."""
    unreachable = make_url(database_url).set(host="127.0.0.1", port=free_port())
    engine = create_engine(unreachable.render_as_string(hide_password=False), pool_size=2)
    fallback = RecordingBudget()
    budget = PostgresRateBudget(
        create_session_factory(engine),
        "quota-away",
        requests=5,
        tokens=1_000,
        period_seconds=PERIOD,
        fallback=fallback,
    )
    try:
        await asyncio.gather(*(budget.acquire(tokens) for tokens in (10, 20, 30)))
    finally:
        await engine.dispose()
    assert sorted(fallback.granted) == [10, 20, 30]


async def _granted(engine: AsyncEngine, name: str) -> dict[str, tuple[int, int]]:
    """Per budget of `name`: grant rows and the amount they grant."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT budget, count(*), sum(amount) FROM rate_grants"
                " WHERE budget LIKE :name GROUP BY budget"
            ),
            {"name": f"{name}:%"},
        )
        return {str(budget): (int(count), int(total)) for budget, count, total in rows}


async def _waiting(engine: AsyncEngine) -> int:
    """Backends of this database waiting for a lock."""
    async with engine.connect() as connection:
        count = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE NOT l.granted AND a.datname = current_database()"
            )
        )
    return int(count or 0)
