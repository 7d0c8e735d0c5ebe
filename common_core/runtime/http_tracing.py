"""A server span for every HTTP request a service's Quart app answers, the child of the caller's
W3C trace context (`traceparent`) when the request carries one.

The span is named and labelled by the matched URL rule (`POST /api/assessments/<assessment_id>
/submit`, as the HTTP metrics), never the raw path or its query string: either may carry an id
or a token that must not leave the process. The operational routes (`/healthz`,
`/healthz/ready`, `/metrics`) make no span. Installed by the kernel only when tracing is on.
"""

from __future__ import annotations

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from opentelemetry.trace import SpanKind, Status, StatusCode
from quart import Quart

from common_core.runtime.http import OPERATIONAL_PATHS
from common_core.runtime.http_metrics import (
    ROUTE_SCOPE_KEY,
    UNMATCHED_ROUTE,
    ASGIApp,
    method_label,
)
from common_core.runtime.tracing import context_from_headers, traced

_SERVER_ERROR = 500


def trace_requests(app: Quart) -> None:
    """Wrap `app` so that each request it answers is a server span (see the module)."""
    app.asgi_app = _RequestTracingMiddleware(app.asgi_app)  # type: ignore[method-assign]


class _RequestTracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http" or scope["path"] in OPERATIONAL_PATHS:
            await self._app(scope, receive, send)
            return
        method = method_label(scope["method"])
        headers = [(name.decode("latin-1"), value) for name, value in scope["headers"]]
        status: int | None = None

        async def recording_send(message: ASGISendEvent) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with traced(
            method,
            kind=SpanKind.SERVER,
            parent=context_from_headers(headers),
            attributes={"http.request.method": method},
        ) as span:
            try:
                await self._app(scope, receive, recording_send)
            finally:
                if span is not None:
                    route = str(scope.get(ROUTE_SCOPE_KEY, UNMATCHED_ROUTE))
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    if status is not None:
                        span.set_attribute("http.response.status_code", status)
                        if status >= _SERVER_ERROR:
                            span.set_status(Status(StatusCode.ERROR))
