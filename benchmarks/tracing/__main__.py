"""`python -m benchmarks.tracing`: what tracing costs on the event path, off and on.

Each operation the tracing code touches is timed three ways in one run: as it was before tracing
existed (the reference, its code copied here), with tracing off (no `OTEL_*` setting: the
default), and with tracing on (the SDK exporting over OTLP/HTTP to a receiver in this process).
The figures are the best of several repeats, in microseconds per operation; the off column's
difference from the reference is what an installation without tracing pays.

Operations: the headers an outbox row stores (with the trace context added, the only change
tracing made to staging), staging an event (`outbox_row`), preparing a directly published message
(`envelope_message`), handling one consumed message (`consume_span` around a handler that does
nothing) and one unit of work (`traced("db.transaction")` around nothing).
"""

from __future__ import annotations

import json
import os
import platform
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from common_core.events.envelope import EventEnvelope, encode_envelope
from common_core.runtime.kafka_consumer import ConsumedEvent, consume_span
from common_core.runtime.kafka_producer import OutgoingMessage, envelope_message
from common_core.runtime.outbox import outbox_row
from common_core.runtime.tracing import start_tracing, stop_tracing, trace_headers, traced
from common_core.testing.otlp_receiver import running_otlp_receiver

RESULTS = Path(__file__).resolve().parents[1] / "results" / "tracing.json"
TOPIC = "huleedu.bench.tracing.v1"
LOOPS = 2_000
REPEATS = 15
LOOPS_ON = 200  # few enough for the exporter to keep up (its queue holds 2,048 spans)


class Scored(BaseModel):
    """A small event payload, like a comparison result's."""

    batch_id: str
    pair_id: str
    winner: str
    confidence: float


ENVELOPE = EventEnvelope[Scored](
    event_type=TOPIC,
    source_service="bench",
    correlation_id=uuid.uuid4(),
    data=Scored(batch_id=str(uuid.uuid4()), pair_id=str(uuid.uuid4()), winner="a", confidence=0.8),
)
EVENT = ConsumedEvent(TOPIC, 0, 0, "batch-1", ENVELOPE, [("event_type", TOPIC.encode())])


def row_before_tracing() -> dict[str, Any]:
    """`outbox_row` as it was before tracing."""
    return {
        "event_id": ENVELOPE.event_id,
        "topic": TOPIC,
        "message_key": "batch-1",
        "payload": encode_envelope(ENVELOPE).decode("utf-8"),
        "headers": {
            "event_type": ENVELOPE.event_type,
            "event_id": str(ENVELOPE.event_id),
            "correlation_id": str(ENVELOPE.correlation_id),
        },
    }


def message_before_tracing() -> OutgoingMessage:
    """`envelope_message` as it was before tracing."""
    headers = [
        ("event_type", ENVELOPE.event_type.encode()),
        ("event_id", str(ENVELOPE.event_id).encode()),
        ("correlation_id", str(ENVELOPE.correlation_id).encode()),
    ]
    return OutgoingMessage(
        topic=TOPIC, value=encode_envelope(ENVELOPE), key="batch-1", headers=headers
    )


def headers_before_tracing() -> dict[str, str]:
    """The stored headers of an outbox row as before tracing: what `outbox_row` adds to."""
    return {"event_type": TOPIC, "event_id": "e", "correlation_id": "c"}


def headers_traced() -> dict[str, str]:
    """The same with the trace context added, as `outbox_row` now does."""
    return {"event_type": TOPIC, "event_id": "e", "correlation_id": "c", **trace_headers()}


def handler() -> None:
    """A handler that does nothing, so only the wrapping is measured."""


def consume_before_tracing() -> None:
    handler()


def consume_traced() -> None:
    with consume_span(TOPIC, [EVENT]):
        handler()


def transaction_before_tracing() -> None:
    handler()


def transaction_traced() -> None:
    with traced("db.transaction", attributes={"db.system.name": "postgresql"}):
        handler()


OPERATIONS: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
    "stored_headers (+ trace_headers())": (headers_before_tracing, headers_traced),
    "stage_event (outbox_row)": (
        row_before_tracing,
        lambda: outbox_row(topic=TOPIC, envelope=ENVELOPE, key="batch-1"),
    ),
    "publish_message (envelope_message)": (
        message_before_tracing,
        lambda: envelope_message(TOPIC, ENVELOPE, "batch-1"),
    ),
    "consume_one_message (consume_span)": (consume_before_tracing, consume_traced),
    "unit_of_work (db.transaction span)": (transaction_before_tracing, transaction_traced),
}


def best_microseconds(
    operation: Callable[[], object], loops: int = LOOPS, repeats: int = REPEATS
) -> float:
    """The best of `repeats` timings of `loops` calls, per call, in microseconds."""
    return min(timeit.repeat(operation, number=loops, repeat=repeats)) / loops * 1e6


def main() -> int:
    """Measure, print the table, write benchmarks/results/tracing.json."""
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    rows: dict[str, dict[str, float]] = {}
    for name, (reference, instrumented) in OPERATIONS.items():
        # Interleaved, so a change of the machine's load hits both alike; the reference is
        # measured twice, and the two figures' difference is the noise of this run.
        first, off, second = (
            best_microseconds(reference),
            best_microseconds(instrumented),
            best_microseconds(reference),
        )
        rows[name] = {
            "reference_us": round(min(first, second), 3),
            "reference_noise_us": round(abs(first - second), 3),
            "off_us": round(off, 3),
        }
    with running_otlp_receiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        start_tracing("bench")
        try:
            with traced("bench request"):  # a current span, as in a handler
                for name, (_, instrumented) in OPERATIONS.items():
                    rows[name]["on_us"] = round(best_microseconds(instrumented, LOOPS_ON, 5), 3)
        finally:
            stop_tracing()
            del os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        spans_received = len(receiver.spans())
    header = ("reference", "(noise)", "off", "off-ref", "on")
    print(f"{'operation':36}" + "".join(f"{h:>10}" for h in header) + "  (µs per operation)")
    for name, row in rows.items():
        row["off_minus_reference_us"] = round(row["off_us"] - row["reference_us"], 3)
        figures = (
            row["reference_us"],
            row["reference_noise_us"],
            row["off_us"],
            row["off_minus_reference_us"],
            row["on_us"],
        )
        print(f"{name:36}" + "".join(f"{f:10.3f}" for f in figures))
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "tracing",
                "measured_at": datetime.now(UTC).isoformat(),
                "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                "method": (
                    f"best of {REPEATS} x {LOOPS} calls per figure (5 x {LOOPS_ON} when on); "
                    "reference = the code before tracing, measured before and after 'off'"
                ),
                "load_average_1m": round(os.getloadavg()[0], 2),
                "spans_exported_while_on": spans_received,
                "operations": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
