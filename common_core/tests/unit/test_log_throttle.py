"""RepeatThrottle: one line per interval for a repeated message, with the count of what it hid."""

from __future__ import annotations

import logging

from common_core.runtime.log_throttle import RepeatThrottle
from common_core.testing import eventually


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[tuple[str, int | None]]:
        return [(r.getMessage(), getattr(r, "repeats", None)) for r in self.records]


def _throttled(interval: float = 30.0) -> tuple[RepeatThrottle, ListHandler, FakeClock]:
    clock = FakeClock()
    throttle = RepeatThrottle(interval, clock=clock, background=False)
    handler = ListHandler()
    throttle.attach(handler)
    return throttle, handler, clock


def _record(
    message: str = "Unable connect to node with id %s: %s",
    *args: object,
    name: str = "aiokafka",
    level: int = logging.ERROR,
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args or (1, "refused"), None)


class TestRepeatsWithinAnInterval:
    def test_first_occurrence_is_written_and_repeats_are_held_back(self) -> None:
        _, handler, clock = _throttled()

        for attempt in range(200):
            clock.now += 0.1
            handler.handle(_record("Unable connect to node with id %s: %s", 1, attempt))

        assert handler.lines() == [("Unable connect to node with id 1: 0", None)]

    def test_interval_end_writes_the_last_repeat_with_the_count(self) -> None:
        throttle, handler, clock = _throttled(interval=30.0)
        for attempt in range(5):
            handler.handle(_record("Unable connect to node with id %s: %s", 1, attempt))

        clock.now += 30.0
        throttle.sweep()

        assert handler.lines() == [
            ("Unable connect to node with id 1: 0", None),
            ("Unable connect to node with id 1: 4", 4),
        ]

    def test_a_steady_stream_gives_one_line_per_interval(self) -> None:
        _, handler, clock = _throttled(interval=10.0)

        for _ in range(600):  # one attempt every 0.1 s for 60 s
            handler.handle(_record())
            clock.now += 0.1

        counts = [repeats for _, repeats in handler.lines()]
        assert counts[0] is None
        assert len(counts) <= 7
        assert sum(c or 1 for c in counts) <= 600

    def test_a_quiet_interval_ends_without_a_line_and_the_next_occurrence_is_written(
        self,
    ) -> None:
        throttle, handler, clock = _throttled(interval=30.0)
        handler.handle(_record())

        clock.now += 31.0
        throttle.sweep()
        handler.handle(_record())

        assert handler.lines() == [
            ("Unable connect to node with id 1: refused", None),
            ("Unable connect to node with id 1: refused", None),
        ]

    def test_flush_writes_the_counts_of_open_intervals(self) -> None:
        throttle, handler, _ = _throttled()
        for _ in range(3):
            handler.handle(_record())

        throttle.flush()

        assert [repeats for _, repeats in handler.lines()] == [None, 2]


class TestWhatCountsAsTheSameMessage:
    def test_different_templates_loggers_and_levels_are_counted_apart(self) -> None:
        _, handler, _ = _throttled()

        for _ in range(3):
            handler.handle(_record("Unable to update metadata from %s", [1]))
            handler.handle(_record(name="aiokafka.conn"))
            handler.handle(_record(level=logging.WARNING))
            handler.handle(_record())

        assert len(handler.records) == 4

    def test_structlog_events_are_keyed_by_event_name(self) -> None:
        _, handler, _ = _throttled()

        for attempt in range(3):
            record = _record(name="common_core.runtime.outbox", level=logging.WARNING)
            record.msg = {"event": "outbox_publish_failed", "attempt": attempt}
            record.args = ()
            handler.handle(record)

        assert len(handler.records) == 1

    def test_info_and_debug_are_never_held_back(self) -> None:
        _, handler, _ = _throttled()

        for _ in range(3):
            handler.handle(_record("batch_completed", level=logging.INFO))
            handler.handle(_record("request", level=logging.DEBUG))

        assert len(handler.records) == 6

    def test_interval_zero_turns_throttling_off(self) -> None:
        _, handler, _ = _throttled(interval=0)

        for _ in range(3):
            handler.handle(_record())

        assert len(handler.records) == 3


class TestBackgroundSweeper:
    async def test_count_is_written_when_the_interval_ends_without_further_logging(
        self,
    ) -> None:
        throttle = RepeatThrottle(0.2)
        handler = ListHandler()
        throttle.attach(handler)
        for _ in range(4):
            handler.handle(_record())

        async def counts() -> list[int | None]:
            return [repeats for _, repeats in handler.lines()]

        await eventually(counts, until=lambda c: c == [None, 3], what="the repeat count line")
