"""In verify mode each worker waits behind a `TopicGate` until the topics pass their check, and
the check (`TopicVerifier`) remembers a pass for a while but never a failure."""

from __future__ import annotations

import asyncio

import pytest

from common_core.errors import NotReadyError
from common_core.runtime.infrastructure import TopicGate
from common_core.runtime.kafka_admin import TopicsNotReadyError, TopicVerifier
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


class ScriptedVerifier(TopicVerifier):
    """A verifier whose broker answers are scripted, counting how often it asks."""

    def __init__(self, answers: list[list[str]], *, cache_seconds: float) -> None:
        super().__init__("127.0.0.1:1", [], cache_seconds=cache_seconds)
        self.answers = answers
        self.asked = 0

    async def problems(self) -> list[str]:
        self.asked += 1
        return self.answers.pop(0)


class TestTopicVerifierCache:
    async def test_a_pass_is_remembered_and_a_failure_is_not(self) -> None:
        verifier = ScriptedVerifier([["t.a is missing"], []], cache_seconds=3600)

        with pytest.raises(TopicsNotReadyError, match=r"t\.a is missing"):
            await verifier.check()
        await verifier.check()
        await verifier.check()

        assert verifier.asked == 2

    async def test_a_pass_is_asked_again_once_the_cache_time_is_over(self) -> None:
        verifier = ScriptedVerifier([[], ["t.a has 1 partitions, expected 3"]], cache_seconds=0)

        await verifier.check()
        with pytest.raises(TopicsNotReadyError, match=r"t\.a has 1 partitions"):
            await verifier.check()
