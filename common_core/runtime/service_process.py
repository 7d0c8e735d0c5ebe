"""Running one service process: the HTTP app and background workers until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

import structlog
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.logging import Logger
from hypercorn.typing import ResponseSummary, WWWScope
from quart import Quart

from common_core.runtime.http_metrics import ROUTE_SCOPE_KEY, UNMATCHED_ROUTE
from common_core.runtime.kafka_security import KafkaAccessError
from common_core.runtime.loop_lag import EventLoopLagProbe
from common_core.runtime.startup_heap import freeze_startup_heap

log = structlog.get_logger(__name__)

# The route template, not the path or the query string: either may carry what must not reach a
# log line (an id, a judge's signed link).
_ACCESS_LOG_FORMAT = "%(m)s %(U)s %(H)s %(s)s %(b)s %(L)ss"


class RouteAccessLogger(Logger):
    """Hypercorn's logger whose access lines name the route the app matched (`/judge/<token>`)
    where hypercorn writes the raw path (`%(U)s`, `%(r)s` and their query-string forms)."""

    def atoms(
        self, request: WWWScope, response: ResponseSummary | None, request_time: float
    ) -> Mapping[str, str]:
        """Hypercorn's atoms with the route template in place of the path."""
        atoms = dict(super().atoms(request, response, request_time))
        route = str(request.get(ROUTE_SCOPE_KEY, UNMATCHED_ROUTE))
        method, protocol = atoms.get("m", "-"), atoms.get("H", "-")
        atoms.update(U=route, Uq=route, q="", r=f"{method} {route} {protocol}")
        atoms["R"] = atoms["r"]
        return atoms


async def run_service(
    app: Quart,
    *,
    host: str,
    port: int,
    workers: Sequence[Awaitable[None]] = (),
    stop_workers: Callable[[], None] = lambda: None,
    graceful_timeout: float = 10.0,
    ops_port: int | None = None,
) -> None:
    """Serve `app` and run `workers` until a signal arrives, then stop workers and the server.

    A worker that crashes stops the whole process (so a supervisor restarts it) instead of
    leaving a half-alive service that answers health checks; a worker the broker refuses
    (`KafkaAccessError`) is raised, for the kernel to report. The event loop's lag is measured
    throughout (`huleedu_event_loop_lag_seconds`). With `ops_port` the server listens on that
    port too (the app decides what each port answers: `serve_operations_on_port`).
    """
    shutdown = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.set)

    config = Config()
    config.bind = [f"{host}:{port}"] + ([f"{host}:{ops_port}"] if ops_port else [])
    config.graceful_timeout = graceful_timeout
    # Loggers, not "-": hypercorn would add its own plain-text stderr handlers otherwise.
    config.errorlog = logging.getLogger("hypercorn.error")
    access = logging.getLogger("hypercorn.access")  # enabled at LOG_LEVEL=DEBUG
    config.accesslog = access if access.isEnabledFor(logging.INFO) else None
    config.access_log_format = _ACCESS_LOG_FORMAT
    config.logger_class = RouteAccessLogger
    server = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown.wait))
    probe = EventLoopLagProbe()
    tasks = [asyncio.ensure_future(w) for w in (*workers, probe.run())]
    crashed: BaseException | None = None

    async def watch(task: asyncio.Future[None]) -> None:
        nonlocal crashed
        try:
            await task
        except asyncio.CancelledError:
            return
        except KafkaAccessError as exc:  # raised below, for the kernel to report as a refusal
            crashed = exc
            shutdown.set()
        except Exception as exc:
            crashed = exc
            log.error("worker_crashed", exc_info=exc)
            shutdown.set()

    watchers = [asyncio.create_task(watch(t)) for t in tasks]
    freeze_startup_heap()
    log.info("service_started", host=host, port=port, ops_port=ops_port, workers=len(tasks) - 1)
    await shutdown.wait()
    log.info("service_stopping")
    stop_workers()
    probe.stop()
    pending: set[asyncio.Future[None]] = set()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=graceful_timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    await server
    log.info("service_stopped", clean=not pending and crashed is None)
    if isinstance(crashed, KafkaAccessError):
        raise crashed
    if crashed is not None:
        raise SystemExit(1)
