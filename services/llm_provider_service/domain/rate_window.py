"""A sliding-window budget, pure: whether a request fits what was granted in the last period,
and if not, how long until enough of those grants have left the window."""

from __future__ import annotations

from collections.abc import Sequence


def seconds_until_fits(
    grants: Sequence[tuple[float, int]], *, now: float, period: float, limit: int, need: int
) -> float:
    """0 when `need` more fits under `limit` given the `(granted_at, amount)` grants of the
    window ending at `now`; else the seconds until the oldest grants have left the window and it
    fits. Grants older than the window are ignored; `need` above `limit` counts as `limit`."""
    need = min(need, limit)
    live = sorted((at, amount) for at, amount in grants if at > now - period)
    used = sum(amount for _, amount in live)
    if used + need <= limit:
        return 0.0
    for at, amount in live:
        used -= amount
        if used + need <= limit:
            return max(0.0, at + period - now)
    return period  # unreachable with need <= limit; a safe answer all the same
