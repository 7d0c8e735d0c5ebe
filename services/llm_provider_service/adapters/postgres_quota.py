"""Rate budgets shared by every instance of the service, in its PostgreSQL.

Each provider has a request budget and a token budget (`rate_budgets` rows). Acquiring is one
call of the server-side function `grant_rate_budget` (one round trip): it locks both rows
(`FOR UPDATE`, so instances take turns), reads the grants of the last period on the database's
clock, and either records the new grants or returns the full budgets' grants, from which the
wait is worked out (`domain/rate_window.py`): together the instances never grant more than the
limit in any window of one period, and a restarted instance finds the budget as spent as it was.
The calls of one instance that wait at the same moment share a round trip: granted together as
one grant at one moment (exactly what granting them one by one at that moment would record), so
the rows change hands once per instance and round, not once per call.
While the database cannot be reached the instance falls back to its own in-process limiter (a
share of the limits, quota / expected instances), so calls go on and together stay in the quota.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.runtime.error_text import describe_error
from llm_provider_service.application.ports import RateBudget
from llm_provider_service.domain.rate_window import seconds_until_fits
from llm_provider_service.metrics import RATE_LIMIT_WAIT_SECONDS, RATE_LIMIT_WAITS

log = structlog.get_logger(__name__)

_MIN_WAIT = 0.01
# The grant runs inside the server (migration llm0002): the budget rows are locked for the
# function's run and the commit only, not across a client's round trips.
_GRANT = text(
    "SELECT over_budget, grant_epoch, grant_amount, now_epoch FROM grant_rate_budget("
    "CAST(:names AS text[]), CAST(:needs AS bigint[]), CAST(:limits AS bigint[]),"
    " CAST(:period AS double precision))"
)


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
        self._asks: list[_Ask] = []
        self._granting: asyncio.Task[None] | None = None

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one more request and its estimated tokens fit the shared budgets."""
        needs = {f"{self._provider}:requests": 1, f"{self._provider}:tokens": estimated_tokens}
        started = time.monotonic()
        waited_on: set[str] = set()
        while True:
            try:
                waits = await self._ask(needs)
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

    async def _ask(self, needs: dict[str, int]) -> dict[str, float]:
        """Join this instance's next round trip: the calls waiting at the same moment are
        granted together, so each instance holds the budget rows once per round, not once per
        call (with many calls in flight, each handing the locks to the next made a queue)."""
        clipped = {name: min(need, self._limits[name]) for name, need in needs.items()}
        answer: asyncio.Future[dict[str, float]] = asyncio.get_running_loop().create_future()
        self._asks.append(_Ask(clipped, answer))
        if self._granting is None or self._granting.done():
            self._granting = asyncio.create_task(self._grant_rounds())
        return await answer

    async def _grant_rounds(self) -> None:
        """Grant the waiting calls, a group per round trip, until none waits."""
        while self._asks:
            asks = [ask for ask in self._asks if not ask.answer.done()]
            group = self._fitting(asks)
            self._asks = asks[len(group) :]
            if not group:
                continue
            try:
                waits = await self._try(_summed(group))
                if waits and len(group) > 1:
                    # Not all together: the first alone (it may fit), the others as told.
                    first, *others = group
                    _answer(others, waits)
                    group, waits = [first], await self._try(first.needs)
            except Exception as exc:
                for ask in group:
                    if not ask.answer.done():
                        ask.answer.set_exception(exc)
                continue
            _answer(group, waits)

    def _fitting(self, asks: list[_Ask]) -> list[_Ask]:
        """The longest run of `asks` from the first whose needs together stay within every limit
        (a group is granted as one: beyond a limit it could only wait)."""
        totals = dict.fromkeys(self._limits, 0)
        for count, ask in enumerate(asks):
            if count and any(
                totals[name] + need > self._limits[name] for name, need in ask.needs.items()
            ):
                return asks[:count]
            for name, need in ask.needs.items():
                totals[name] += need
        return asks

    async def _try(self, needs: dict[str, int]) -> dict[str, float]:
        """One round trip: grant everything (empty answer) or nothing (the waits by budget)."""
        names = sorted(self._limits)
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    _GRANT,
                    {
                        "names": names,
                        "needs": [needs[name] for name in names],
                        "limits": [self._limits[name] for name in names],
                        "period": self._period,
                    },
                )
            ).all()
        waits: dict[str, float] = {}
        for name in sorted({row.over_budget for row in rows}):
            grants = [
                (float(row.grant_epoch), int(row.grant_amount))
                for row in rows
                if row.over_budget == name
            ]
            wait = seconds_until_fits(
                grants,
                now=float(rows[0].now_epoch),
                period=self._period,
                limit=self._limits[name],
                need=needs[name],
            )
            # The server found the budget full; a wait of 0 (clock rounding) still retries soon.
            waits[name] = max(wait, _MIN_WAIT)
        return waits


@dataclass(frozen=True, slots=True)
class _Ask:
    """One call's needs (each within its limit) and where its answer goes."""

    needs: dict[str, int]
    answer: asyncio.Future[dict[str, float]]


def _summed(group: list[_Ask]) -> dict[str, int]:
    """The needs of a group of calls, granted as one at one moment."""
    totals: dict[str, int] = {}
    for ask in group:
        for name, need in ask.needs.items():
            totals[name] = totals.get(name, 0) + need
    return totals


def _answer(group: list[_Ask], waits: dict[str, float]) -> None:
    """Tell each call of a group (still waiting) whether it was granted, or how long to wait."""
    for ask in group:
        if not ask.answer.done():
            ask.answer.set_result(waits)
