"""The periodic worker keeps going after a failing pass and stops when asked."""

from __future__ import annotations

import asyncio

from common_core.runtime.periodic import PeriodicWorker
from common_core.testing import eventually


class Counting(PeriodicWorker):
    name = "counting"

    def __init__(self, *, fail_first: bool, busy_passes: int = 0, interval: float = 0.01) -> None:
        super().__init__(interval_seconds=interval)
        self.passes = 0
        self._fail_first = fail_first
        self._busy = busy_passes

    async def run_pass(self) -> bool:
        self.passes += 1
        if self._fail_first and self.passes == 1:
            raise RuntimeError("database unavailable")
        if self._busy:
            self._busy -= 1
            return True
        return False


async def _passes(worker: Counting) -> int:
    return worker.passes


class TestPeriodicWorker:
    async def test_a_failing_pass_does_not_end_the_worker(self) -> None:
        worker = Counting(fail_first=True)
        task = asyncio.create_task(worker.run())
        await eventually(lambda: _passes(worker), until=lambda n: n >= 3)
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
        assert task.exception() is None

    async def test_busy_passes_run_back_to_back_and_stop_ends_the_loop(self) -> None:
        # With an hour between idle passes, only back-to-back busy passes can reach 6 in time.
        worker = Counting(fail_first=False, busy_passes=5, interval=3600)
        task = asyncio.create_task(worker.run())
        await eventually(lambda: _passes(worker), until=lambda n: n >= 6, timeout=5)
        worker.stop()
        await asyncio.wait_for(task, timeout=5)
        assert worker.passes == 6
