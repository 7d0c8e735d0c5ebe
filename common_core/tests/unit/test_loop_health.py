"""The kernel's runtime pieces for a loop that never blocks: the compute pool (off the loop,
bounded, one at a time per key), the loop-lag probe and the group-membership metrics."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from common_core.runtime.compute import ComputePool
from common_core.runtime.kafka_consumer import GroupMembership
from common_core.runtime.loop_lag import EventLoopLagProbe
from common_core.runtime.metrics import CONSUMER_LAG


def _busy(seconds: float) -> str:
    """Hold a worker thread for `seconds` (sleeping, as numpy does without the GIL)."""
    time.sleep(seconds)
    return threading.current_thread().name


class TestComputePool:
    async def test_runs_the_function_on_a_worker_thread(self) -> None:
        pool = ComputePool(1, name="test-compute")
        try:
            name = await pool.run("test", None, _busy, 0.0)
        finally:
            pool.close()
        assert name.startswith("test-compute")
        assert name != threading.current_thread().name

    async def test_keyword_arguments_reach_the_function(self) -> None:
        pool = ComputePool(1)
        try:
            assert await pool.run("test", None, sorted, [3, 1, 2], reverse=True) == [3, 2, 1]
        finally:
            pool.close()

    async def test_the_event_loop_keeps_running_while_work_runs(self) -> None:
        pool = ComputePool(1)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            await pool.run("test", None, _busy, 0.3)
        finally:
            ticker.cancel()
            pool.close()
        assert ticks >= 5  # a blocked loop would have ticked at most once

    async def test_no_more_than_workers_run_at_once(self) -> None:
        pool = ComputePool(2)
        running = 0
        most = 0
        lock = threading.Lock()

        def counted() -> None:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.05)
            with lock:
                running -= 1

        try:
            await asyncio.gather(*(pool.run("test", None, counted) for _ in range(6)))
        finally:
            pool.close()
        assert most == 2

    async def test_work_under_one_key_runs_one_at_a_time_in_order(self) -> None:
        pool = ComputePool(4)
        spans: list[tuple[int, float, float]] = []

        def span(index: int) -> None:
            start = time.monotonic()
            time.sleep(0.03)
            spans.append((index, start, time.monotonic()))

        try:
            await asyncio.gather(*(pool.run("test", "batch-1", span, i) for i in range(4)))
        finally:
            pool.close()
        assert [index for index, _, _ in spans] == [0, 1, 2, 3]
        for (_, _, end), (_, start, _) in itertools.pairwise(spans):
            assert start >= end

    async def test_an_exception_reaches_the_caller_and_frees_the_key(self) -> None:
        pool = ComputePool(1)

        def fail() -> None:
            raise ValueError("bad input")

        try:
            with pytest.raises(ValueError, match="bad input"):
                await pool.run("test", "batch-1", fail)
            assert await pool.run("test", "batch-1", sorted, [2, 1]) == [1, 2]
        finally:
            pool.close()

    def test_a_pool_needs_a_worker(self) -> None:
        with pytest.raises(ValueError, match="at least one worker"):
            ComputePool(0)


class TestEventLoopLagProbe:
    async def test_a_blocked_loop_shows_as_lag(self) -> None:
        probe = EventLoopLagProbe(interval=0.01)
        task = asyncio.create_task(probe.run())
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop, as CPU work on it would
        await asyncio.sleep(0.05)
        probe.stop()
        await task
        assert probe.max_lag >= 0.25


class TestGroupMembership:
    def test_a_revoked_partition_loses_its_lag_series(self) -> None:
        group = "test-membership"
        CONSUMER_LAG.labels(group=group, topic="t", partition="0").set(5)
        CONSUMER_LAG.labels(group=group, topic="t", partition="1").set(7)
        GroupMembership(group).revoked({TopicPartition("t", 0)})
        lag = {"group": group, "topic": "t"}
        assert (
            REGISTRY.get_sample_value("huleedu_consumer_lag_messages", {**lag, "partition": "0"})
            is None
        )
        assert (
            REGISTRY.get_sample_value("huleedu_consumer_lag_messages", {**lag, "partition": "1"})
            == 7
        )

    def test_assignments_after_the_first_count_as_rebalances(self) -> None:
        group = "test-membership-rebalances"
        membership = GroupMembership(group)
        membership.assigned({TopicPartition("t", 0), TopicPartition("t", 1)})
        membership.assigned({TopicPartition("t", 0)})
        assert REGISTRY.get_sample_value("huleedu_consumer_rebalances_total", {"group": group}) == 1
