"""The circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from llm_provider_service.domain.circuit_breaker import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state


def _breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, cooldown_seconds=10.0, clock=clock)


class TestCircuitBreaker:
    def test_opens_after_the_threshold_of_consecutive_failures(self) -> None:
        breaker = _breaker(FakeClock())
        for _ in range(2):
            assert breaker.try_acquire()
            breaker.record_failure()
        assert _state(breaker) is CircuitState.CLOSED
        assert breaker.try_acquire()
        breaker.record_failure()
        assert _state(breaker) is CircuitState.OPEN
        assert not breaker.try_acquire()

    def test_a_success_resets_the_failure_count(self) -> None:
        breaker = _breaker(FakeClock())
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
        breaker.record_failure()
        assert _state(breaker) is CircuitState.CLOSED

    def test_half_open_after_cooldown_allows_one_trial_that_closes_it(self) -> None:
        clock = FakeClock()
        breaker = _breaker(clock)
        for _ in range(3):
            breaker.record_failure()
        clock.now = 10.0
        assert _state(breaker) is CircuitState.HALF_OPEN
        assert breaker.try_acquire()
        assert not breaker.try_acquire()  # only one trial at a time
        breaker.record_success()
        assert _state(breaker) is CircuitState.CLOSED

    def test_a_failed_trial_opens_it_again_for_a_full_cooldown(self) -> None:
        clock = FakeClock()
        breaker = _breaker(clock)
        for _ in range(3):
            breaker.record_failure()
        clock.now = 10.0
        assert breaker.try_acquire()
        breaker.record_failure()
        assert _state(breaker) is CircuitState.OPEN
        clock.now = 19.0
        assert _state(breaker) is CircuitState.OPEN
        clock.now = 20.0
        assert _state(breaker) is CircuitState.HALF_OPEN
