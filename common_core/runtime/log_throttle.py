"""Collapsing a repeated message (a broker or database that stays down) into one line per interval.

While a dependency is down, its client library and our own retry loops log the same warning on
every attempt: aiokafka alone writes hundreds of `Unable connect to node ...` lines a minute.
`RepeatThrottle` is a `logging.Filter` on the root handler. The first occurrence of a logger +
level + message template is written; further ones within `interval` seconds are counted instead.
When the interval ends, one line stands for them: the last occurrence with `repeats=N` (the
occurrences it stands for), and the next interval starts. An interval with no repeat ends quietly,
so the next occurrence is written at once again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEATS_ATTRIBUTE = "repeats"
"""The LogRecord attribute (and log line key) carrying how many occurrences a line stands for."""

_SUMMARY_MARK = "_huleedu_repeat_summary"

_Key = tuple[str, int, str]


@dataclass
class _Window:
    ends: float
    suppressed: int = 0
    last: logging.LogRecord | None = None


def message_template(record: logging.LogRecord) -> str:
    """What identifies "the same message": the unformatted template, or a structlog event name."""
    # structlog's records carry the event dict as msg (ProcessorFormatter.wrap_for_formatter).
    if isinstance(record.msg, dict):
        return str(record.msg.get("event", ""))
    return str(record.msg)


class RepeatThrottle(logging.Filter):
    """Let the first of each repeated message through per interval; report the rest as a count."""

    def __init__(
        self,
        interval_seconds: float,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        super().__init__()
        self.interval_seconds = interval_seconds
        self.min_level = min_level
        self._clock = clock
        self._windows: dict[_Key, _Window] = {}
        self._next_due: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._handler: logging.Handler | None = None
        self._background = background
        self._sweeper: threading.Thread | None = None

    def attach(self, handler: logging.Handler) -> None:
        """Install on `handler`, which also writes the repeat counts when an interval ends."""
        self._handler = handler
        handler.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write the record now (False: it is counted for the interval's last line)."""
        if (
            self.interval_seconds <= 0
            or record.levelno < self.min_level
            or getattr(record, _SUMMARY_MARK, False)
        ):
            return True
        key = (record.name, record.levelno, message_template(record))
        with self._lock:
            now = self._clock()
            due = self._close_expired(now, now)
            window = self._windows.get(key)
            if window is None:
                self._windows[key] = _Window(ends=now + self.interval_seconds)
                self._schedule(now + self.interval_seconds)
                write = True
            else:
                window.suppressed += 1
                window.last = record
                write = False
                self._start_sweeper()
        self._write(due)
        return write

    def flush(self) -> None:
        """Write the counts of every open interval now (at exit, so no count is lost)."""
        with self._lock:
            due = self._close_expired(math.inf, self._clock())
        self._write(due)

    def sweep(self) -> None:
        """Write the counts of the intervals that have ended (also done on every record)."""
        with self._lock:
            now = self._clock()
            due = self._close_expired(now, now)
        self._write(due)

    def _close_expired(self, until: float, now: float) -> list[logging.LogRecord]:
        """End the windows ending by `until`; one with repeats yields its line and reopens."""
        if self._next_due is None or until < self._next_due:
            return []
        summaries = []
        self._next_due = None
        for key, window in list(self._windows.items()):
            if window.ends > until:
                self._schedule(window.ends)
            elif window.last is None:
                del self._windows[key]
            else:
                summaries.append(_summary(window.last, window.suppressed))
                # The count line counts as the new window's first line.
                self._windows[key] = _Window(ends=now + self.interval_seconds)
                self._schedule(now + self.interval_seconds)
        return summaries

    def _schedule(self, when: float) -> None:
        if self._next_due is None or when < self._next_due:
            self._next_due = when
            self._wake.notify()

    def _write(self, summaries: list[logging.LogRecord]) -> None:
        if self._handler is not None:
            for summary in summaries:
                self._handler.handle(summary)

    def _start_sweeper(self) -> None:
        if self._background and self._sweeper is None:
            self._sweeper = threading.Thread(
                target=self._sweep_forever, name="log-repeat-sweeper", daemon=True
            )
            self._sweeper.start()

    def _sweep_forever(self) -> None:
        # Reports a count when its interval ends even if nothing else is logged afterwards.
        while True:
            with self._lock:
                while self._next_due is None or self._clock() < self._next_due:
                    delay = None if self._next_due is None else self._next_due - self._clock()
                    self._wake.wait(timeout=delay)
                now = self._clock()
                due = self._close_expired(now, now)
            self._write(due)


def _summary(last: logging.LogRecord, repeats: int) -> logging.LogRecord:
    summary = logging.makeLogRecord(last.__dict__)
    if isinstance(last.msg, dict):
        summary.msg = dict(last.msg)
    setattr(summary, REPEATS_ATTRIBUTE, repeats)
    setattr(summary, _SUMMARY_MARK, True)
    return summary
