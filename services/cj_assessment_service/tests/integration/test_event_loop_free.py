"""A slow computation of one batch stalls nothing else: the consumer keeps its place in the
group and the HTTP API answers while it runs.

The reliability check is made slower than the Kafka session timeout (10 s) by an injected
delay on its worker thread (a big batch's estimate, or a slow machine). Run on the event loop,
such a check stopped the heartbeats, the broker threw the consumer out of its group and the
uncommitted callbacks were delivered again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

import pytest
from dishka import Provider, Scope, provide
from prometheus_client import REGISTRY

from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.entrypoints.consumers import CALLBACK_GROUP
from cj_assessment_service.testing.harness import (
    batch_in_state,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
)
from common_core.runtime.compute import ComputePool

pytestmark = pytest.mark.integration

P = ParamSpec("P")
T = TypeVar("T")

SLOW_CHECK_SECONDS = 12.0  # past the consumer's 10 s session timeout


class SlowFirstCheck(ComputePool):
    """The kernel's pool, with the batch's first reliability check held on its worker thread
    for SLOW_CHECK_SECONDS (a thread that sleeps holds no GIL, as numpy's kernels do)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.started = threading.Event()
        self.finished = threading.Event()

    async def run(
        self,
        kind: str,
        key: Hashable | None,
        function: Callable[P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if kind != "reliability_check" or self.started.is_set():
            return await super().run(kind, key, function, *args, **kwargs)
        self.started.set()

        def slow() -> T:
            time.sleep(SLOW_CHECK_SECONDS)
            try:
                return function(*args, **kwargs)
            finally:
                self.finished.set()

        return await super().run(kind, key, slow)


class SlowComputeProvider(Provider):
    """Binds the slow pool in place of the kernel's."""

    def __init__(self, pool: SlowFirstCheck) -> None:
        super().__init__()
        self._pool = pool

    @provide(scope=Scope.APP)
    def compute(self) -> ComputePool:
        return self._pool


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class TestASlowComputationBlocksNothing:
    async def test_the_consumer_keeps_its_group_and_the_api_answers_meanwhile(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            min_comparisons_per_essay_before_stop=2.0,
        )
        pool = SlowFirstCheck()
        rebalances = {"group": CALLBACK_GROUP}
        before_rebalances = _sample("huleedu_consumer_rebalances_total", rebalances)
        duplicate = {"outcome": "duplicate"}
        before_duplicates = _sample("huleedu_cj_callbacks_processed_total", duplicate)
        status_latencies: list[float] = []
        async with (
            running_service(settings, SlowComputeProvider(pool)) as service,
            judging(settings, service.producer),
        ):
            await submit(
                service,
                request_envelope(
                    settings, "slow-check", essays(20), max_comparisons=120, target_reliability=0.99
                ),
            )
            batch = await batch_in_state(service, "slow-check", BatchState.WAITING_CALLBACKS)
            await asyncio.to_thread(pool.started.wait, 60)
            client = service.app.test_client()
            while not pool.finished.is_set():
                asked = time.perf_counter()
                response = await client.get(f"/api/v1/batches/{batch.id}")
                status_latencies.append(time.perf_counter() - asked)
                assert response.status_code == 200
                await asyncio.sleep(0.25)
            done = await batch_in_state(service, "slow-check", BatchState.COMPLETED, timeout=120)
        rebalanced = _sample("huleedu_consumer_rebalances_total", rebalances) - before_rebalances
        redelivered = _sample("huleedu_cj_callbacks_processed_total", duplicate) - before_duplicates
        assert rebalanced == 0
        assert redelivered == 0
        assert done.completed == done.planned
        # The API answered all along; a blocked loop would have held one answer for the whole
        # check. (The bound is a fraction of the check, not a timing target: noisy machines.)
        assert len(status_latencies) >= 10
        assert max(status_latencies) < SLOW_CHECK_SECONDS / 4
