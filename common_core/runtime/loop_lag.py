"""Event-loop lag: how late the loop runs a timer, measured all the time in every service.

The probe sleeps for a fixed interval and measures how much later than asked it woke up. A
loop blocked by CPU work (or a synchronous call) shows up at once; the Kafka heartbeats, the
consumers and the HTTP API all wait that long.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from common_core.runtime.metrics import EVENT_LOOP_LAG, EVENT_LOOP_LAG_MAX

log = structlog.get_logger(__name__)

DEFAULT_PROBE_INTERVAL_SECONDS = 0.1
# A lag this long is logged (once per interval of the log throttle): heartbeats are at risk.
WARN_LAG_SECONDS = 1.0


class EventLoopLagProbe:
    """Measures the loop's lag every `interval` seconds until stopped."""

    def __init__(self, interval: float = DEFAULT_PROBE_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._stopping = asyncio.Event()
        self.max_lag = 0.0

    def stop(self) -> None:
        """Finish the probe's loop."""
        self._stopping.set()

    async def run(self) -> None:
        """Probe until `stop()`."""
        while not self._stopping.is_set():
            asked = time.perf_counter()
            await asyncio.sleep(self._interval)
            lag = max(0.0, time.perf_counter() - asked - self._interval)
            EVENT_LOOP_LAG.observe(lag)
            if lag > self.max_lag:
                self.max_lag = lag
                EVENT_LOOP_LAG_MAX.set(lag)
            if lag >= WARN_LAG_SECONDS:
                log.warning("event_loop_blocked", lag_seconds=round(lag, 3))
