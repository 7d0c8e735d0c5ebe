"""Distributed tracing with OpenTelemetry, set up from the standard `OTEL_*` settings.

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER` names an exporter (`otlp`,
`console`); it is off when none is, or with `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. The OTLP exporter speaks HTTP/protobuf and reads its own settings
(endpoint, headers, timeout, compression, certificates); the batch processor reads `OTEL_BSP_*`,
the sampler `OTEL_TRACES_SAMPLER`, the resource `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` (the service's name when `OTEL_SERVICE_NAME` is unset).

Off costs nothing: no SDK provider is installed (nor imported: the SDK, the exporter and the
propagators load only when tracing starts) and every function here returns after one check of a
module flag, before any context is read, header written or span object made.

The W3C trace context (`traceparent`, `tracestate`) travels in Kafka headers and HTTP headers:
`trace_headers()` is the current context as headers (the outbox stores them with the event),
`context_from_headers` reads a parent back. Span attributes name what a span is about (the
correlation id, batch id, entity ref, topic, provider and model), never a text, key or token.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

TRACE_HEADERS = ("traceparent", "tracestate")
"""The W3C trace context headers (and the only ones `context_from_headers` reads)."""

CORRELATION_ID = "huleedu.correlation_id"
BATCH_ID = "huleedu.batch_id"
ENTITY_REF = "huleedu.entity_ref"

_EXPORTERS = frozenset({"otlp", "console"})
_TRACER_NAME = "huleedu"


@dataclass
class _Tracing:
    """This process's tracer while tracing is on (None: off)."""

    tracer: trace.Tracer | None = None
    provider: Any = None  # the SDK's TracerProvider, imported only when tracing is on


_active = _Tracing()


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the `OTEL_*` settings in `environ` ask for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(environ)
    if exporters is not None:
        return bool(exporters)
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def _exporter_names(environ: Mapping[str, str]) -> list[str] | None:
    """The exporters `OTEL_TRACES_EXPORTER` names (None when unset; `none` is no exporter)."""
    raw = environ.get("OTEL_TRACES_EXPORTER")
    if raw is None or not raw.strip():
        return None
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(names) - _EXPORTERS - {"none"})
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}: use otlp, console or none"
        )
    return [name for name in names if name != "none"]


def start_tracing(service_name: str) -> bool:
    """Install the SDK's tracer provider and exporters when the process's `OTEL_*` settings ask
    for it; whether tracing is on. Raises ValueError for settings it cannot follow."""
    environ = os.environ
    if _active.tracer is not None:
        return True
    if not tracing_wanted(environ):
        return False
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}: only http/protobuf is built in"
        )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    resource = Resource.create(
        {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    )
    provider = TracerProvider(resource=resource)
    exporters: list[SpanExporter] = []
    for name in _exporter_names(environ) or ["otlp"]:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        else:
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _active.provider = provider
    _active.tracer = provider.get_tracer(_TRACER_NAME)
    return True


def stop_tracing() -> None:
    """Export the spans still buffered and shut the exporters down (at the process's end)."""
    if _active.provider is not None:
        _active.provider.shutdown()
    _active.tracer = _active.provider = None


def tracing_enabled() -> bool:
    """Whether spans are being recorded and exported in this process."""
    return _active.tracer is not None


def trace_headers() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`); empty when
    tracing is off or no span is current."""
    if _active.tracer is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {name: value for name, value in carrier.items() if name in TRACE_HEADERS}


def span_headers(span: Span | None) -> dict[str, str]:
    """The W3C headers that make `span` the parent of what receives them (empty for None)."""
    if span is None:
        return {}
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return {name: value for name, value in carrier.items() if name in TRACE_HEADERS}


def context_from_headers(
    headers: Iterable[tuple[str, bytes]] | Mapping[str, Any] | None,
) -> Context | None:
    """The trace context carried by Kafka headers (name, bytes) or a mapping of stored headers;
    None when tracing is off or they carry none."""
    if _active.tracer is None or not headers:
        return None
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    carrier = {
        name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in pairs
        if name in TRACE_HEADERS
    }
    if "traceparent" not in carrier:
        return None
    from opentelemetry import propagate

    context = propagate.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def links_to(contexts: Iterable[Context | None], *, besides: Context | None = None) -> list[Link]:
    """Links to the spans of the given contexts, one per distinct span, leaving out the span of
    `besides` (the parent, which needs no link)."""
    seen: dict[tuple[int, int], Link] = {}
    if besides is not None:
        parent = trace.get_current_span(besides).get_span_context()
        seen[(parent.trace_id, parent.span_id)] = Link(parent)
    for context in contexts:
        if context is None:
            continue
        span_context = trace.get_current_span(context).get_span_context()
        seen.setdefault((span_context.trace_id, span_context.span_id), Link(span_context))
    return list(seen.values())[1 if besides is not None else 0 :]


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()
"""What `traced` returns when tracing is off: entering and leaving it does nothing."""


def traced(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, AttributeValue | None] | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A span around the block, current inside it (its child spans and `trace_headers` follow
    it): the child of `parent` when given, else of the current span. An exception escaping the
    block is recorded on the span. Yields None (and makes nothing) when tracing is off."""
    if _active.tracer is None:
        return _NO_SPAN
    return _active.tracer.start_as_current_span(
        name, context=parent, kind=kind, links=links, attributes=_clean(attributes)
    )


def open_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    attributes: Mapping[str, AttributeValue | None] | None = None,
) -> Span | None:
    """A started span that is not made current (the caller ends it, see `end_spans`): the
    child of `parent` when given, else of the current span. None when tracing is off."""
    if _active.tracer is None:
        return None
    return _active.tracer.start_span(name, context=parent, kind=kind, attributes=_clean(attributes))


def end_spans(spans: Iterable[Span | None], error: BaseException | None = None) -> None:
    """End spans from `open_span`, marking them failed with `error` when given."""
    for span in spans:
        if span is None:
            continue
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def annotate(**attributes: AttributeValue | None) -> None:
    """Add attributes to the current span (None values are left out); nothing when off."""
    if _active.tracer is None:
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_clean(attributes) or {})


def _clean(
    attributes: Mapping[str, AttributeValue | None] | None,
) -> dict[str, AttributeValue] | None:
    if not attributes:
        return None
    return {key: value for key, value in attributes.items() if value is not None}
