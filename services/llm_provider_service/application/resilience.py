"""Resilience around one provider's chat model: rate limits, a circuit breaker and retries.

Order per attempt: wait for the provider's request and token budgets (aiolimiter leaky buckets),
ask the circuit breaker, call. Retryable failures (429, 5xx, timeouts) are retried by tenacity
with exponential backoff and jitter, or after exactly the provider's `Retry-After`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from llm_provider_service.application.ports import ChatModel, ChatReply, ChatRequest, RateBudget
from llm_provider_service.domain.circuit_breaker import CircuitBreaker, CircuitState
from llm_provider_service.domain.errors import (
    CircuitOpenError,
    JudgeError,
    ProviderRateLimitedError,
    ProviderServerError,
    ProviderTimeoutError,
    RetryableProviderError,
)
from llm_provider_service.domain.prompt_caching import CHARS_PER_TOKEN
from llm_provider_service.metrics import (
    CIRCUIT_STATE,
    PROVIDER_ATTEMPTS,
    RATE_LIMIT_WAIT_SECONDS,
    RATE_LIMIT_WAITS,
)

_CIRCUIT_GAUGE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently retryable failures are retried."""

    max_retries: int
    initial_seconds: float
    max_seconds: float
    retry_after_max_seconds: float


class ProviderRateLimiter:
    """Requests-per-period and tokens-per-period budgets of one provider."""

    def __init__(self, provider: str, *, requests: int, tokens: int, period_seconds: float) -> None:
        self._provider = provider
        self.requests = AsyncLimiter(requests, period_seconds)
        self.tokens = AsyncLimiter(tokens, period_seconds)
        self._token_capacity = tokens

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one more request and its estimated tokens fit the budgets."""
        amount = max(1, min(estimated_tokens, self._token_capacity))
        started = time.monotonic()
        waited = False
        for name, limiter, need in (
            ("requests", self.requests, 1),
            ("tokens", self.tokens, amount),
        ):
            if not limiter.has_capacity(need):
                waited = True
                RATE_LIMIT_WAITS.labels(provider=self._provider, limit=name).inc()
            await limiter.acquire(need)
        if waited:
            RATE_LIMIT_WAIT_SECONDS.labels(provider=self._provider).inc(time.monotonic() - started)


def estimate_tokens(request: ChatRequest) -> int:
    """A cheap upper-bound guess of a call's tokens (prompt characters / 4 + answer budget)."""
    return (len(request.system) + len(request.user)) // CHARS_PER_TOKEN + request.max_tokens


class ResilientChatModel:
    """A ChatModel wrapped in rate limits, a circuit breaker and retries."""

    def __init__(
        self,
        provider: str,
        chat: ChatModel,
        *,
        breaker: CircuitBreaker,
        limiter: RateBudget,
        policy: RetryPolicy,
    ) -> None:
        self._provider = provider
        self._chat = chat
        self._breaker = breaker
        self._limiter = limiter
        self._policy = policy
        self._backoff = wait_exponential_jitter(
            multiplier=policy.initial_seconds,
            max=policy.max_seconds,
            jitter=policy.initial_seconds,
        )
        self._publish_state()

    @property
    def breaker(self) -> CircuitBreaker:
        """The provider's circuit breaker."""
        return self._breaker

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, RetryableProviderError) and exc.retry_after is not None:
            return min(max(0.0, exc.retry_after), self._policy.retry_after_max_seconds)
        return float(self._backoff(state))

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Call the model, retrying retryable failures; raises the last JudgeError."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._policy.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(RetryableProviderError),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._attempt(request)
        raise AssertionError("tenacity ends with a result or the last error")  # pragma: no cover

    async def _attempt(self, request: ChatRequest) -> ChatReply:
        # An open circuit refuses at once, without spending rate budget or waiting for it.
        if self._breaker.state is CircuitState.OPEN:
            raise self._circuit_open()
        await self._limiter.acquire(estimate_tokens(request))
        if not self._breaker.try_acquire():
            raise self._circuit_open()
        try:
            reply = await self._chat.complete(request)
        except (ProviderServerError, ProviderTimeoutError) as exc:
            self._breaker.record_failure()
            outcome = "timeout" if isinstance(exc, ProviderTimeoutError) else "server_error"
            PROVIDER_ATTEMPTS.labels(provider=self._provider, outcome=outcome).inc()
            raise
        except ProviderRateLimitedError:
            self._breaker.release()
            PROVIDER_ATTEMPTS.labels(provider=self._provider, outcome="rate_limited").inc()
            raise
        except JudgeError:
            self._breaker.release()
            PROVIDER_ATTEMPTS.labels(provider=self._provider, outcome="rejected").inc()
            raise
        except BaseException:
            self._breaker.release()
            raise
        finally:
            self._publish_state()
        self._breaker.record_success()
        self._publish_state()
        PROVIDER_ATTEMPTS.labels(provider=self._provider, outcome="success").inc()
        return reply

    def _circuit_open(self) -> CircuitOpenError:
        self._publish_state()
        return CircuitOpenError(
            f"{self._provider} circuit is open after repeated failures",
            details={"retry_in_seconds": round(self._breaker.seconds_until_trial(), 3)},
        )

    def _publish_state(self) -> None:
        CIRCUIT_STATE.labels(provider=self._provider).set(_CIRCUIT_GAUGE[self._breaker.state])
