"""The sliding-window budget: what fits now, how long until it fits, never over the limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_provider_service.domain.rate_window import seconds_until_fits


class TestSecondsUntilFits:
    def test_a_request_that_fits_waits_for_nothing(self) -> None:
        assert seconds_until_fits([(9.0, 40)], now=10.0, period=5.0, limit=100, need=60) == 0.0

    def test_a_request_that_does_not_fit_waits_until_the_oldest_grants_leave(self) -> None:
        grants = [(6.0, 50), (8.0, 30), (9.0, 20)]
        # 100 used: 50 must leave (the grant of t=6 leaves at t=11).
        assert seconds_until_fits(grants, now=10.0, period=5.0, limit=100, need=40) == 1.0

    def test_grants_older_than_the_period_count_for_nothing(self) -> None:
        assert seconds_until_fits([(1.0, 100)], now=10.0, period=5.0, limit=100, need=100) == 0.0

    def test_a_request_above_the_limit_waits_for_an_empty_window_not_for_ever(self) -> None:
        assert seconds_until_fits([(8.0, 10)], now=10.0, period=5.0, limit=100, need=500) == 3.0


@given(
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=60),
    st.integers(min_value=50, max_value=200),
)
def test_granting_as_told_never_exceeds_the_limit_in_any_window(
    needs: list[int], limit: int
) -> None:
    """Requests granted at the times the function names never exceed the limit in a window."""
    period, now = 10.0, 0.0
    grants: list[tuple[float, int]] = []
    for need in needs:
        now += seconds_until_fits(grants, now=now, period=period, limit=limit, need=need)
        grants.append((now, need))
    for start, _ in grants:
        in_window = sum(amount for at, amount in grants if start <= at < start + period)
        assert in_window <= limit
