"""Rate budgets shared by every instance of the service, in its PostgreSQL.

Each provider has a request budget and a token budget (`rate_budgets` rows). Acquiring locks
both rows (`FOR UPDATE`, so instances take turns), reads the grants of the last period on the
database's clock, and either records the new grants or learns how long to wait
(`domain/rate_window.py`): together the instances never grant more than the limit in any window
of one period, and a restarted instance finds the budget as spent as it was. While the database
cannot be reached the instance falls back to its own in-process limiter, so calls go on.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from sqlalchemy import and_, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.runtime.error_text import describe_error
from llm_provider_service.adapters.tables import rate_budgets, rate_grants
from llm_provider_service.application.ports import RateBudget
from llm_provider_service.domain.rate_window import seconds_until_fits
from llm_provider_service.metrics import RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS

log = structlog.get_logger(__name__)

_MIN_WAIT = 0.01


class PostgresRateBudget:
    """A provider's requests-per-period and tokens-per-period budgets, shared through the
    database by every instance (the application's `RateBudget`)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        provider: str,
        *,
        requests: int,
        tokens: int,
        period_seconds: float,
        fallback: RateBudget,
    ) -> None:
        self._sessions = sessions
        self._provider = provider
        self._limits = {f"{provider}:requests": requests, f"{provider}:tokens": tokens}
        self._period = period_seconds
        self._fallback = fallback
        self._created = False

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one more request and its estimated tokens fit the shared budgets."""
        needs = {f"{self._provider}:requests": 1, f"{self._provider}:tokens": estimated_tokens}
        started = time.monotonic()
        waited_on: set[str] = set()
        while True:
            try:
                waits = await self._try(needs)
            except Exception as exc:  # the database is unreachable: this instance's own limits
                log.warning("shared_rate_budget_unavailable", error=describe_error(exc))
                await self._fallback.acquire(estimated_tokens)
                return
            if not waits:
                break
            for name in waits.keys() - waited_on:
                RATE_LIMIT_WAITS.labels(provider=self._provider, limit=name.split(":")[1]).inc()
            waited_on |= waits.keys()
            await asyncio.sleep(max(_MIN_WAIT, *waits.values()))
        if waited_on:
            RATE_LIMIT_WAIT_SECONDS.labels(provider=self._provider).inc(time.monotonic() - started)

    async def _try(self, needs: dict[str, int]) -> dict[str, float]:
        """One transaction: grant everything (empty answer) or nothing (the waits by budget)."""
        waits = await self._grant_or_wait(needs)
        # Only once the rows are committed: a concurrent call that skipped the INSERT while
        # they were not would lock no rows, and so grant beside this one unchecked.
        self._created = True
        return waits

    async def _grant_or_wait(self, needs: dict[str, int]) -> dict[str, float]:
        async with self._sessions() as session, session.begin():
            if not self._created:
                await session.execute(
                    insert(rate_budgets)
                    .values([{"name": name} for name in sorted(self._limits)])
                    .on_conflict_do_nothing()
                )
            await session.execute(
                select(rate_budgets.c.name)
                .where(rate_budgets.c.name.in_(sorted(self._limits)))
                .order_by(rate_budgets.c.name)
                .with_for_update()
            )
            now = await session.scalar(select(func.extract("epoch", func.clock_timestamp())))
            now_s = float(now or 0.0)
            await session.execute(
                delete(rate_grants).where(
                    and_(
                        rate_grants.c.budget.in_(sorted(self._limits)),
                        rate_grants.c.granted_at < func.to_timestamp(now_s - self._period),
                    )
                )
            )
            # The common case reads one sum per budget; the grants themselves (to learn how long
            # to wait) only for a budget the request does not fit.
            used = {
                name: int(total)
                for name, total in (
                    await session.execute(
                        select(rate_grants.c.budget, func.sum(rate_grants.c.amount))
                        .where(rate_grants.c.budget.in_(sorted(self._limits)))
                        .group_by(rate_grants.c.budget)
                    )
                ).all()
            }
            over = sorted(
                name
                for name, limit in self._limits.items()
                if used.get(name, 0) + min(needs[name], limit) > limit
            )
            waits: dict[str, float] = {}
            if over:
                rows = (
                    await session.execute(
                        select(
                            rate_grants.c.budget,
                            func.extract("epoch", rate_grants.c.granted_at),
                            rate_grants.c.amount,
                        ).where(rate_grants.c.budget.in_(over))
                    )
                ).all()
                for name in over:
                    grants = [
                        (float(at), int(amount)) for budget, at, amount in rows if budget == name
                    ]
                    wait = seconds_until_fits(
                        grants,
                        now=now_s,
                        period=self._period,
                        limit=self._limits[name],
                        need=needs[name],
                    )
                    if wait > 0:
                        waits[name] = wait
            if not waits:
                await session.execute(
                    insert(rate_grants).values(
                        [
                            {
                                "budget": name,
                                "amount": min(needs[name], limit),
                                "granted_at": func.to_timestamp(now_s),
                            }
                            for name, limit in self._limits.items()
                        ]
                    )
                )
            return waits
