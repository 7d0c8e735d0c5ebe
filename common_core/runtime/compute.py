"""CPU-heavy work off the event loop: a worker pool owned by the service kernel.

A service's event loop carries its Kafka heartbeats, its HTTP API and every consumer. A fit, a
reliability estimate or a planning step of a 10,000-essay batch takes from a tenth of a second
to seconds; on the loop it stops all of them, long enough for the broker to throw the consumer
out of its group. `ComputePool.run` hands such a pure function to a thread: numpy and scipy
release the GIL in their kernels, and Python's switch interval (5 ms) gives the loop its turn
during the Python-level parts, so the loop keeps running.

Two bounds: at most `workers` computations run at once (the rest wait their turn, without
blocking the loop), and computations under the same key (a batch id) run one at a time, in
the order they were asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from common_core.runtime.metrics import COMPUTE_SECONDS, COMPUTE_WAIT_SECONDS

P = ParamSpec("P")
T = TypeVar("T")


class ComputePool:
    """Runs pure CPU-heavy functions on worker threads, bounded overall and one per key."""

    def __init__(self, workers: int, *, name: str = "compute") -> None:
        if workers < 1:
            raise ValueError("a compute pool needs at least one worker")
        self._workers = workers
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._keys: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @property
    def workers(self) -> int:
        """How many computations may run at once."""
        return self._workers

    async def run(
        self,
        kind: str,
        key: Hashable | None,
        function: Callable[P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """`function(*args, **kwargs)` on a worker thread; `kind` labels its metrics, `key`
        (e.g. a batch id) serialises computations that belong together."""
        queued = time.perf_counter()
        async with self._key_lock(key), self._slot():
            started = time.perf_counter()
            COMPUTE_WAIT_SECONDS.labels(kind=kind).observe(started - queued)
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._pool(), lambda: function(*args, **kwargs)
                )
            finally:
                COMPUTE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)

    def close(self) -> None:
        """Let running computations finish and stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=self._name)
        return self._executor

    def _slot(self) -> asyncio.Semaphore:
        # Created on first use, inside the loop that uses it.
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._workers)
        return self._slots

    @contextlib.asynccontextmanager
    async def _key_lock(self, key: Hashable | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock, users = self._keys.get(key, (asyncio.Lock(), 0))
        self._keys[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._keys[key]
            if users == 1:
                del self._keys[key]
            else:
                self._keys[key] = (lock, users - 1)
