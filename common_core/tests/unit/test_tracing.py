"""Tracing: when the `OTEL_*` settings turn it on, that off installs and emits nothing, and that
the W3C trace context goes into staged events and published messages and comes back out of
consumed ones as the parent of the consumer's span."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.trace import SpanKind
from pydantic import BaseModel
from quart import Quart

from common_core.events.envelope import EventEnvelope
from common_core.runtime.http import register_operational_routes
from common_core.runtime.http_tracing import trace_requests
from common_core.runtime.kafka_consumer import ConsumedEvent, consume_span, event_span
from common_core.runtime.kafka_producer import envelope_message
from common_core.runtime.outbox import outbox_row
from common_core.runtime.tracing import (
    CORRELATION_ID,
    context_from_headers,
    start_tracing,
    stop_tracing,
    trace_headers,
    traced,
    tracing_wanted,
)
from common_core.testing.otlp_receiver import OTLPReceiver, running_otlp_receiver

TOPIC = "test.tracing.v1"


class Ping(BaseModel):
    pass


def _envelope() -> EventEnvelope[Ping]:
    return EventEnvelope[Ping](
        event_type=TOPIC, source_service="test", correlation_id=uuid.uuid4(), data=Ping()
    )


class TestSettings:
    @pytest.mark.parametrize(
        ("environ", "wanted"),
        [
            ({}, False),
            ({"OTEL_SERVICE_NAME": "x"}, False),
            ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
            ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
            ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
            ({"OTEL_TRACES_EXPORTER": "console"}, True),
            (
                {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
                False,
            ),
            ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
            ({"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, True),
        ],
    )
    def test_tracing_is_on_only_when_an_exporter_or_endpoint_is_set(
        self, environ: dict[str, str], wanted: bool
    ) -> None:
        assert tracing_wanted(environ) is wanted

    def test_an_unknown_exporter_is_refused_by_name(self) -> None:
        with pytest.raises(ValueError, match="zipkin"):
            tracing_wanted({"OTEL_TRACES_EXPORTER": "zipkin"})

    def test_the_grpc_protocol_is_refused_at_start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        with pytest.raises(ValueError, match="http/protobuf"):
            start_tracing("test")


class TestOff:
    def test_off_loads_no_sdk_and_adds_no_header_or_span(self) -> None:
        # A fresh interpreter: this test process may have loaded the SDK for other tests.
        script = textwrap.dedent(
            """
            import os, sys, uuid
            for name in [n for n in os.environ if n.startswith("OTEL_")]:
                del os.environ[name]
            from opentelemetry import trace
            from common_core.events.envelope import EventEnvelope
            from common_core.runtime.kafka_producer import envelope_message
            from common_core.runtime.outbox import outbox_row
            from common_core.runtime.tracing import start_tracing, traced, trace_headers

            envelope = EventEnvelope[dict](
                event_type="t", source_service="t", correlation_id=uuid.uuid4(), data={}
            )
            assert start_tracing("test") is False
            with traced("ignored") as span:
                assert span is None
                row = outbox_row(topic="t", envelope=envelope, key=None)
                message = envelope_message("t", envelope, None)
            assert set(row["headers"]) == {"event_type", "event_id", "correlation_id"}
            assert [name for name, _ in message.headers] == [
                "event_type", "event_id", "correlation_id"
            ]
            assert trace_headers() == {}
            assert not trace.get_current_span().get_span_context().is_valid
            assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
            assert not any(name.startswith("opentelemetry.sdk") for name in sys.modules)
            assert "opentelemetry.propagate" not in sys.modules
            print("off-ok")
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "off-ok"


@pytest.fixture
def tracing_to_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OTLPReceiver]:
    with running_otlp_receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
        monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        assert start_tracing("tracing-test") is True
        try:
            yield receiver
        finally:
            stop_tracing()


def _consumed(headers: list[tuple[str, bytes]], offset: int = 0) -> ConsumedEvent[Ping]:
    return ConsumedEvent(TOPIC, 0, offset, "entity-1", _envelope(), headers)


class TestPropagation:
    def test_a_staged_event_carries_the_current_context_and_its_consumer_span_is_a_child(
        self, tracing_to_receiver: OTLPReceiver
    ) -> None:
        with traced("request") as request:
            assert request is not None
            row = outbox_row(topic=TOPIC, envelope=_envelope(), key="entity-1")
            message = envelope_message(TOPIC, _envelope(), "entity-1")
        sent = request.get_span_context()
        stored = context_from_headers(row["headers"])
        assert stored is not None
        assert row["headers"]["traceparent"].startswith(
            f"00-{sent.trace_id:032x}-{sent.span_id:016x}-"
        )
        assert dict(message.headers)["traceparent"] == row["headers"]["traceparent"].encode()

        event = _consumed(message.headers)
        with consume_span(TOPIC, [event]):
            inner = trace_headers()["traceparent"]
        stop_tracing()  # exports what is buffered

        spans = {s.name: s for s in tracing_to_receiver.spans(f"{sent.trace_id:032x}")}
        process, handle = spans[f"{TOPIC} process"], spans[f"handle {TOPIC}"]
        assert process.parent_span_id == f"{sent.span_id:016x}"
        assert process.kind == SpanKind.CONSUMER.value + 1  # OTLP counts from UNSPECIFIED = 0
        assert process.attributes["messaging.destination.name"] == TOPIC
        assert process.attributes[CORRELATION_ID] == str(event.envelope.correlation_id)
        assert handle.parent_span_id == process.span_id
        assert inner.split("-")[2] == handle.span_id  # what the handler stages follows it
        assert {s.service for s in spans.values()} == {"tracing-test"}

    def test_a_run_of_events_from_two_traces_is_the_child_of_the_first_and_links_the_other(
        self, tracing_to_receiver: OTLPReceiver
    ) -> None:
        headers = []
        for name in ("first", "second"):
            with traced(name) as span:
                assert span is not None
                headers.append([(k, v.encode()) for k, v in trace_headers().items()])
        assert all(context_from_headers(h) is not None for h in headers)
        with consume_span(TOPIC, [_consumed(headers[0], 0), _consumed(headers[1], 1)]):
            pass
        stop_tracing()

        [process] = [s for s in tracing_to_receiver.spans() if s.name == f"{TOPIC} process"]
        first_id, second_id = (h[0][1].decode().split("-") for h in headers)
        assert (process.trace_id, process.parent_span_id) == (first_id[1], first_id[2])
        assert process.links == ((second_id[1], second_id[2]),)
        assert process.attributes["messaging.batch.message_count"] == 2

    def test_each_event_of_a_run_handled_one_by_one_continues_its_own_trace(
        self, tracing_to_receiver: OTLPReceiver
    ) -> None:
        headers = []
        for name in ("first", "second"):
            with traced(name):
                headers.append([(k, v.encode()) for k, v in trace_headers().items()])
        events = [_consumed(headers[0], 0), _consumed(headers[1], 1)]
        staged = []
        with consume_span(TOPIC, events):
            for event in events:
                with event_span(event, **{"huleedu.entity_ref": "entity-1"}):
                    staged.append(outbox_row(topic=TOPIC, envelope=_envelope(), key=None))
        stop_tracing()

        sent = [h[0][1].decode().split("-") for h in headers]
        assert [row["headers"]["traceparent"].split("-")[1] for row in staged] == [
            sent[0][1],
            sent[1][1],
        ]
        per_event = [s for s in tracing_to_receiver.spans() if s.name == f"handle event {TOPIC}"]
        assert sorted((s.trace_id, s.parent_span_id) for s in per_event) == sorted(
            (trace_id, span_id) for _, trace_id, span_id, _ in sent
        )
        assert {s.attributes["huleedu.entity_ref"] for s in per_event} == {"entity-1"}

    def test_a_message_without_a_context_starts_a_new_trace(
        self, tracing_to_receiver: OTLPReceiver
    ) -> None:
        assert context_from_headers([("event_type", b"x")]) is None
        with consume_span(TOPIC, [_consumed([("event_type", b"x")])]):
            pass
        stop_tracing()

        [process] = [s for s in tracing_to_receiver.spans() if s.name == f"{TOPIC} process"]
        assert process.parent_span_id == ""


class TestHttpRequests:
    async def test_a_request_continues_the_callers_trace_under_its_route_never_its_path(
        self, tracing_to_receiver: OTLPReceiver
    ) -> None:
        app = Quart(__name__)
        register_operational_routes(app, {})

        @app.get("/api/items/<item_id>")
        async def item(item_id: str) -> tuple[dict[str, str], int]:
            return {"id": item_id}, 200

        trace_requests(app)
        trace_id, span_id = "ab" * 16, "cd" * 8
        client = app.test_client()
        reply = await client.get(
            "/api/items/item-4711",
            query_string={"token": "s3cr3t"},
            headers={"traceparent": f"00-{trace_id}-{span_id}-01"},
        )
        assert reply.status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        stop_tracing()

        [server] = tracing_to_receiver.spans()  # none for /healthz
        assert server.name == "GET /api/items/<item_id>"
        assert (server.trace_id, server.parent_span_id) == (trace_id, span_id)
        assert server.kind == SpanKind.SERVER.value + 1
        assert server.attributes == {
            "http.request.method": "GET",
            "http.route": "/api/items/<item_id>",
            "http.response.status_code": 200,
        }
