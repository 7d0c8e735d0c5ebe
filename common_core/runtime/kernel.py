"""The service kernel: every service is built, started and stopped by the same code.

A service describes itself once (`ServiceDefinition`: its settings class, migrations, topics,
container and a `build` step that makes its HTTP app and workers); the kernel does the rest, in
this order: migrations and topics, the dishka container (tests pass provider overrides), the
standard readiness checks (database and Kafka), the service's app and workers, then serving
until SIGTERM and a graceful stop. `__main__` is `run_main(DEFINITION)`; tests use
`service_runtime` and `running_workers` to run the same parts in their own event loop.

`python -m <service> migrate` only creates and migrates the service's database (an operator or a
job, with the owner role); `python -m <service> grants ROLE` prints the DML grants its runtime
role needs on the migrated database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import structlog
from dishka import AsyncContainer, Provider
from pydantic import ValidationError
from quart import Quart
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common_core.runtime.blas_threads import limit_blas_threads
from common_core.runtime.database_refusals import DatabaseRefusal, database_refusal
from common_core.runtime.grants import read_dml_grants
from common_core.runtime.http import ReadinessCheck, serve_operations_on_port
from common_core.runtime.http_tracing import trace_requests
from common_core.runtime.infrastructure import (
    MigrationPrivilegeError,
    gated_workers,
    migrate_service_database,
    prepare_service_infrastructure,
    topic_readiness,
    topic_verifier,
)
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.kafka_security import KafkaAccessError
from common_core.runtime.logging import configure_logging
from common_core.runtime.metrics import DATABASE_POOLS
from common_core.runtime.service_process import run_service
from common_core.runtime.settings import ServiceSettings
from common_core.runtime.tracing import start_tracing, stop_tracing, tracing_enabled

log = structlog.get_logger(__name__)

S = TypeVar("S", bound=ServiceSettings)
W = TypeVar("W")


class Worker(Protocol):
    """A background loop of a service: runs until `stop()` is called."""

    async def run(self) -> None:
        """Work until stopped."""

    def stop(self) -> None:
        """Ask the loop to finish (it returns from `run` soon after)."""


@dataclass(frozen=True)
class ServiceParts:
    """What a service's `build` step makes from its container: the app and the workers."""

    app: Quart
    workers: Mapping[str, Worker]


@dataclass(frozen=True)
class StandardParts(Generic[S]):
    """What the kernel hands a service's `build` step."""

    settings: S
    container: AsyncContainer
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: KafkaEventProducer
    readiness: Mapping[str, ReadinessCheck]


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    """One service, described for the kernel."""

    name: str
    settings: Callable[[], S]
    versions_dir: Path
    topics: Callable[[S], Sequence[str]]
    make_container: Callable[..., AsyncContainer]
    build: Callable[[StandardParts[S]], Awaitable[ServiceParts]]
    graceful_timeout: Callable[[S], float] = lambda _settings: 10.0
    numeric: bool = False
    """A process doing numeric work caps BLAS at one thread (`blas_threads`)."""
    on_start: Callable[[S], None] = lambda _settings: None
    """Runs once logging is configured, before anything connects (start-up warnings)."""


@dataclass
class ServiceRuntime(Generic[S]):
    """The built parts of one service instance."""

    settings: S
    container: AsyncContainer
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: KafkaEventProducer
    app: Quart
    workers: Mapping[str, Worker]
    graceful_timeout: float

    def worker(self, name: str, kind: type[W]) -> W:
        """The worker called `name`, checked to be a `kind` (for tests that drive one)."""
        worker = self.workers[name]
        if not isinstance(worker, kind):
            raise TypeError(f"worker {name!r} is a {type(worker).__name__}, not a {kind.__name__}")
        return worker

    def loops(self) -> list[Coroutine[Any, Any, None]]:
        """The workers' loops, to run beside the HTTP server."""
        return [worker.run() for worker in self.workers.values()]

    def stop(self) -> None:
        """Ask every worker to finish."""
        for worker in self.workers.values():
            worker.stop()


def standard_readiness(
    engine: AsyncEngine, producer: KafkaEventProducer
) -> dict[str, ReadinessCheck]:
    """The checks of `/healthz/ready` every service has: the database answers a query and the
    Kafka cluster answers a metadata request."""

    async def database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return {"database": database, "kafka": producer.check_cluster}


async def prepare_infrastructure(definition: ServiceDefinition[S], settings: S) -> None:
    """Apply the service's migrations and create its topics, or check them in verify mode
    (idempotent, safe from several instances starting at once)."""
    await prepare_service_infrastructure(
        settings, definition.versions_dir, definition.topics(settings)
    )


@contextlib.asynccontextmanager
async def service_runtime(
    definition: ServiceDefinition[S], settings: S, *overrides: Provider
) -> AsyncIterator[ServiceRuntime[S]]:
    """Migrations and topics first, then the container (`overrides` replace its bindings), the
    readiness checks, the app and the workers; the engine's pool is reported
    (`huleedu_db_pool_*`) while the runtime lives, and the container (engine, producer, pools)
    is closed after. With tracing on (`tracing.start_tracing`), every HTTP request the app
    answers is a server span."""
    await prepare_infrastructure(definition, settings)
    container = definition.make_container(settings, *overrides)
    # Verify mode: readiness names missing topics and the workers wait for them.
    verifier = topic_verifier(settings, definition.topics(settings))
    try:
        engine = await container.get(AsyncEngine)
        sessions = await container.get(async_sessionmaker[AsyncSession])
        producer = await container.get(KafkaEventProducer)
        parts = await definition.build(
            StandardParts(
                settings=settings,
                container=container,
                engine=engine,
                sessions=sessions,
                producer=producer,
                readiness={**standard_readiness(engine, producer), **topic_readiness(verifier)},
            )
        )
        if tracing_enabled():
            trace_requests(parts.app)
        with DATABASE_POOLS.watching(definition.name, engine):
            yield ServiceRuntime(
                settings=settings,
                container=container,
                engine=engine,
                sessions=sessions,
                producer=producer,
                app=parts.app,
                workers=gated_workers(parts.workers, verifier),
                graceful_timeout=definition.graceful_timeout(settings),
            )
    finally:
        await container.close()


@contextlib.asynccontextmanager
async def running_workers(
    runtime: ServiceRuntime[S], *, stop_timeout: float = 15.0
) -> AsyncIterator[ServiceRuntime[S]]:
    """Run the instance's workers as tasks in this event loop (tests and benchmarks)."""
    tasks = [asyncio.ensure_future(loop) for loop in runtime.loops()]
    try:
        yield runtime
    finally:
        runtime.stop()
        _, pending = await asyncio.wait(tasks, timeout=stop_timeout) if tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(definition: ServiceDefinition[S], settings: S) -> None:
    """Build the instance and serve it until SIGTERM/SIGINT, then stop it gracefully."""
    async with service_runtime(definition, settings) as runtime:
        if settings.ops_http_port is not None:
            serve_operations_on_port(runtime.app, settings.ops_http_port)
        await run_service(
            runtime.app,
            host=settings.http_host,
            port=settings.http_port,
            workers=runtime.loops(),
            stop_workers=runtime.stop,
            graceful_timeout=runtime.graceful_timeout,
            ops_port=settings.ops_http_port,
        )


def _command_line(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {name}", description="Run the service.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve the HTTP API and the workers (the default)")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    grants = commands.add_parser("grants", help="print the GRANTs a DML-only runtime role needs")
    grants.add_argument("role", help="the runtime role's name")
    return parser


def run_main(definition: ServiceDefinition[S], argv: Sequence[str] | None = None) -> None:
    """`python -m <service> [serve|migrate|grants ROLE]`: read the settings, configure logging,
    then serve (the default, with tracing when the `OTEL_*` settings ask for it), migrate, or
    print the runtime role's grants."""
    args = _command_line(definition.name).parse_args(argv)
    settings = read_settings_or_exit(definition)
    if definition.numeric:
        limit_blas_threads()
    configure_logging(
        definition.name,
        settings.log_level,
        json=settings.log_json,
        repeat_interval_seconds=settings.log_repeat_interval_seconds,
    )
    try:
        if args.command == "migrate":
            asyncio.run(migrate_service_database(settings, definition.versions_dir))
            log.info("database_migrated")
        elif args.command == "grants":
            url, tls = settings.service_database_url, settings.database_tls
            statements = asyncio.run(read_dml_grants(url, args.role, tls))
            sys.stdout.write("".join(f"{statement}\n" for statement in statements))
        else:
            definition.on_start(settings)
            start_tracing_or_exit(definition.name)
            try:
                asyncio.run(serve(definition, settings))
            finally:
                stop_tracing()  # exports the spans still buffered
    except MigrationPrivilegeError as error:
        if args.command == "migrate":
            log.error("migration_failed", error=error.message)
        else:
            log.error("startup_failed", setting="DATABASE_MIGRATE_ON_START", error=error.message)
        raise SystemExit(1) from None
    except KafkaAccessError as error:
        exit_refused_by_kafka(error)
    except Exception as error:
        refusal = database_refusal(
            error, password_from_file=settings.database_password_file is not None
        )
        if refusal is None:
            raise
        exit_refused_by_database(refusal, args.command or "serve")


EXIT_CONFIG = 78
"""Exit status of a start refused by the broker or by the settings' checks (sysexits'
EX_CONFIG): restarting cannot help."""


def read_settings_or_exit(definition: ServiceDefinition[S]) -> S:
    """The service's settings; invalid ones are logged as one JSON line naming each setting and
    its problem (never its value: it may be a password), then the process exits `EXIT_CONFIG`."""
    try:
        return definition.settings()
    except ValidationError as error:
        configure_logging(definition.name)
        problems = []
        for problem in error.errors(include_input=False, include_url=False):
            # A check across settings (the Kafka security ones) names them in its message.
            entry = {"problem": str(problem["msg"]).removeprefix("Value error, ")}
            if problem["loc"]:
                entry["setting"] = ".".join(str(part) for part in problem["loc"]).upper()
            problems.append(entry)
        structlog.get_logger(__name__).error("settings_invalid", problems=problems)
        sys.exit(EXIT_CONFIG)
    except ValueError as error:  # a `<NAME>_FILE` secret that cannot be read
        configure_logging(definition.name)
        structlog.get_logger(__name__).error("settings_invalid", problems=[{"problem": str(error)}])
        sys.exit(EXIT_CONFIG)


def start_tracing_or_exit(service_name: str) -> None:
    """Start tracing as the `OTEL_*` settings say; settings it cannot follow (an unknown
    exporter, the gRPC protocol) are logged and the process exits `EXIT_CONFIG`."""
    try:
        if start_tracing(service_name):
            log.info("tracing_started")
    except ValueError as error:
        log.error("settings_invalid", problems=[{"problem": str(error)}])
        sys.exit(EXIT_CONFIG)


def exit_refused_by_database(refusal: DatabaseRefusal, command: str) -> None:
    """Log why the database could not be used as one line naming the setting to check; exit
    `EXIT_CONFIG` when retrying cannot help, 1 when the server may yet answer."""
    structlog.get_logger(__name__).error(
        "database_refused" if refusal.permanent else "database_unreachable",
        command=command,
        setting=refusal.setting,
        cause=refusal.cause,
    )
    sys.exit(EXIT_CONFIG if refusal.permanent else 1)


def exit_refused_by_kafka(error: KafkaAccessError) -> None:
    """Log the refusal as one line naming the setting to fix, then exit with `EXIT_CONFIG`."""
    structlog.get_logger(__name__).error(
        "kafka_access_refused", setting=error.setting, cause=error.cause
    )
    sys.exit(EXIT_CONFIG)
