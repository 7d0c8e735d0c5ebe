"""A background loop that runs a pass every interval until stopped (monitors, dispatchers)."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

import structlog

from common_core.runtime.error_text import describe_error

log = structlog.get_logger(__name__)


class PeriodicWorker(ABC):
    """Calls `run_pass` every `interval_seconds` until `stop()`.

    A failing pass is logged and retried on the next tick rather than ending the worker; a pass
    that reports more work waiting (returns True) is followed by the next one at once.
    """

    name = "periodic"

    def __init__(self, *, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish the pass in hand and return from `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Pass, wait, repeat until stopped."""
        while not self._stopping.is_set():
            try:
                more = await self.run_pass()
            except Exception as exc:
                log.warning(f"{self.name}_pass_failed", error=describe_error(exc))
                more = False
            if more:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)

    @abstractmethod
    async def run_pass(self) -> bool:
        """Do one pass; True when more work is waiting right away."""
