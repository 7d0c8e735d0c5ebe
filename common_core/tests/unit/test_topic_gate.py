"""In verify mode each worker waits behind a `TopicGate` until the topics pass their check."""

from __future__ import annotations

import asyncio

from common_core.errors import NotReadyError
from common_core.runtime.infrastructure import TopicGate
from common_core.testing import eventually


class Recording:
    """A worker that records whether it ran and was stopped."""

    def __init__(self) -> None:
        self.ran = False
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        self.ran = True
        await self.stopped.wait()

    def stop(self) -> None:
        self.stopped.set()


class Topics:
    """A check that fails until the topics are `created`, counting how often it was asked."""

    def __init__(self) -> None:
        self.created = False
        self.asked = 0

    async def check(self) -> None:
        self.asked += 1
        if not self.created:
            raise NotReadyError("t.a is missing")


async def _ran(worker: Recording) -> bool:
    return worker.ran


class TestTopicGate:
    async def test_the_worker_starts_once_the_topics_pass(self) -> None:
        worker, topics = Recording(), Topics()
        gate = TopicGate(worker, topics.check, name="consumer", interval_seconds=0.01)
        task = asyncio.create_task(gate.run())

        await eventually(lambda: _asked(topics), until=lambda n: n >= 3)
        assert not worker.ran
        topics.created = True
        await eventually(lambda: _ran(worker))
        gate.stop()
        await asyncio.wait_for(task, timeout=5)

        assert worker.stopped.is_set()

    async def test_stopping_while_waiting_returns_without_running_the_worker(self) -> None:
        worker, topics = Recording(), Topics()
        gate = TopicGate(worker, topics.check, name="consumer", interval_seconds=3600)
        task = asyncio.create_task(gate.run())
        await eventually(lambda: _asked(topics), until=lambda n: n >= 1)

        gate.stop()
        await asyncio.wait_for(task, timeout=5)

        assert not worker.ran

    async def test_an_unreachable_broker_counts_as_not_ready(self) -> None:
        worker = Recording()
        calls = 0

        async def unreachable() -> None:
            nonlocal calls
            calls += 1
            if calls < 3:
                raise OSError("connection refused")

        gate = TopicGate(worker, unreachable, name="relay", interval_seconds=0.01)
        task = asyncio.create_task(gate.run())
        await eventually(lambda: _ran(worker))
        gate.stop()
        await asyncio.wait_for(task, timeout=5)

        assert calls == 3


async def _asked(topics: Topics) -> int:
    return topics.asked
