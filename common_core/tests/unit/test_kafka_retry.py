"""The consumers' backoff between tries of a failing message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common_core.runtime.kafka_consumer import retry_delay


class TestRetryDelay:
    def test_the_delay_doubles_from_the_minimum_up_to_the_maximum(self) -> None:
        assert [retry_delay(n, 0.2, 1.0) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]

    @given(failures=st.integers(1, 10**6))
    def test_an_outage_of_any_length_waits_at_most_the_maximum(self, failures: int) -> None:
        assert 0.2 <= retry_delay(failures, 0.2, 5.0) <= 5.0
