"""HTTP request metrics of every service's Quart app: requests by method, route and status, and
their duration by method and route (`huleedu_http_requests_total`,
`huleedu_http_request_duration_seconds`, docs/metrics.md).

The route label is the matched URL rule (`/api/v1/batches/<batch_id>`), never the raw path, so
ids do not multiply the series; a request no rule matched is `unmatched`. The status is what was
sent, measured around the whole ASGI app: a 503 or 500 answered after a request's teardown
failed (`DatabaseAwareHTTPConnection`) counts as that, not as the response the view returned.
The operational routes (`/healthz`, `/healthz/ready`, `/metrics`: `register_operational_routes`
passes them as `uncounted`) are left out: probes and scrapes would outnumber the API's own
traffic and flatten its latency.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from quart import Quart, Response, request

from common_core.runtime.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "other"

_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# Where the app leaves the matched rule for the middleware (the request's scope is the ASGI one).
ROUTE_SCOPE_KEY = "huleedu.route"


def method_label(method: str) -> str:
    """The method as a label value: any token is a method on the wire, only standard ones are
    kept (`other` for the rest)."""
    return method if method in _STANDARD_METHODS else OTHER_METHOD


ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


def measure_requests(app: Quart, *, uncounted: Collection[str] = ()) -> None:
    """Count and time every HTTP request `app` answers, by its route template (except the
    routes in `uncounted`)."""

    @app.after_request
    async def remember_route(response: Response) -> Response:
        # Runs for every answer Quart makes, error handlers' included, while the rule is known.
        rule = request.url_rule
        request.scope[ROUTE_SCOPE_KEY] = rule.rule if rule is not None else UNMATCHED_ROUTE  # type: ignore[literal-required]
        return response

    app.asgi_app = _RequestMetricsMiddleware(app.asgi_app, frozenset(uncounted))  # type: ignore[method-assign]


class _RequestMetricsMiddleware:
    """Wraps the app's ASGI callable: the status sent and the time until the app returned."""

    def __init__(self, app: ASGIApp, uncounted: frozenset[str]) -> None:
        self._app = app
        self._uncounted = uncounted

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def recording_send(message: ASGISendEvent) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, recording_send)
        except Exception:
            # Escaped the app: the server answers 500 unless a response had started.
            status = status if status is not None else 500
            raise
        finally:
            # No status: the client left before any answer; nothing was served to count.
            if status is not None:
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        route = str(scope.get(ROUTE_SCOPE_KEY, UNMATCHED_ROUTE))
        if route in self._uncounted:
            return
        method = method_label(str(scope.get("method", "")))
        HTTP_REQUESTS.labels(method, route, str(status)).inc()
        HTTP_REQUEST_DURATION.labels(method, route).observe(seconds)
