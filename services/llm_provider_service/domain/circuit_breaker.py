"""A per-provider circuit breaker: closed → open after N consecutive failures → half-open after
a cool-down (one trial call) → closed on success, open again on failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of one provider and refuses calls while open."""

    def __init__(
        self,
        *,
        failure_threshold: int,
        cooldown_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_progress = False

    @property
    def state(self) -> CircuitState:
        """The current state (open turns half-open once the cool-down has passed)."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def consecutive_failures(self) -> int:
        """Failures since the last success."""
        return self._failures

    def seconds_until_trial(self) -> float:
        """How long until a half-open trial is allowed (0 when calls are allowed now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._cooldown - (self._clock() - self._opened_at))

    def try_acquire(self) -> bool:
        """Whether a call may go ahead now; in half-open only one trial call at a time."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_in_progress:
            self._trial_in_progress = True
            return True
        return False

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        self._failures = 0
        self._opened_at = None
        self._trial_in_progress = False

    def record_failure(self) -> None:
        """A call failed in a way that says the provider is unhealthy."""
        self._failures += 1
        if self._trial_in_progress or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._trial_in_progress = False

    def release(self) -> None:
        """A call ended without telling anything about the provider's health."""
        self._trial_in_progress = False
