"""The whole local stack (Kafka, PostgreSQL, services) as the CLI drives it: up, down, status."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devstack import chromium, kafka, postgres, prometheus, services
from devstack.processes import StackError, say, stopwatch

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATABASES = ("huleedu_cj", "huleedu_submission", "huleedu_llm_provider")


@dataclass(frozen=True)
class StackSettings:
    """Where the stack keeps its state, its ports, and servers to use instead of starting ours."""

    state_dir: Path
    kafka_port: int = kafka.DEFAULT_PORT
    postgres_port: int = postgres.DEFAULT_PORT
    external_kafka: str | None = None
    external_database_url: str | None = None

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], state_dir: Path | None = None
    ) -> StackSettings:
        """Settings from DEVSTACK_STATE_DIR, KAFKA_PORT, POSTGRES_PORT and the external URLs."""
        default_state = Path(environ.get("DEVSTACK_STATE_DIR") or REPO_ROOT / ".stack")
        return cls(
            state_dir=(state_dir or default_state).resolve(),
            kafka_port=int(environ.get("KAFKA_PORT", kafka.DEFAULT_PORT)),
            postgres_port=int(environ.get("POSTGRES_PORT", postgres.DEFAULT_PORT)),
            external_kafka=environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            external_database_url=environ.get("DATABASE_URL") or None,
        )


@dataclass(frozen=True)
class Endpoints:
    """How clients reach the running stack."""

    kafka_bootstrap_servers: str
    database_url: str
    database_ca_file: Path | None = None
    """The test CA of a TLS-only PostgreSQL (`up --tls`): clients connect with verify-full."""

    @property
    def database_env(self) -> dict[str, str]:
        """DATABASE_URL and, for a TLS-only server, the settings that verify it."""
        env = {"DATABASE_URL": self.database_url}
        if self.database_ca_file is not None:
            env["DATABASE_SSLMODE"] = "verify-full"
            env["DATABASE_SSLROOTCERT"] = str(self.database_ca_file)
        return env

    def shell_exports(self) -> str:
        """An `export ...` line for eval in a shell."""
        variables = {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers, **self.database_env}
        return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())


def provision() -> None:
    """Fetch the Kafka classpath and install PostgreSQL, Prometheus (with promtool), amtool,
    Chromium with ChromeDriver and axe-core where they are missing, so no test installs
    anything."""
    with stopwatch() as elapsed:
        libs = kafka.provision_kafka()
        bin_dir = postgres.provision_postgres()
        prometheus_binary = prometheus.provision_prometheus()
        amtool = prometheus.provision_amtool()
        browser = chromium.provision_chromium()
        axe_script = chromium.provision_axe_core()
    version = kafka.kafka_version()
    say(
        f"provisioned: Kafka {version} in {libs}, PostgreSQL in {bin_dir}, "
        f"Prometheus {prometheus_binary}, amtool {amtool}, Chromium {browser.browser} with "
        f"{browser.driver}, axe-core {axe_script} ({elapsed()})"
    )


def _external_kafka_reachable(bootstrap: str) -> bool:
    try:
        kafka.wait_for_kafka(bootstrap, timeout=5.0)
    except StackError:
        return False
    return True


def _up_kafka(settings: StackSettings) -> str:
    running = kafka.running_kafka(settings.state_dir)
    if running is not None:
        say(f"Kafka already running at {running.address} (pid {running.pid})")
        return running.address
    external = settings.external_kafka
    if external is not None:
        if _external_kafka_reachable(external):
            say(f"Kafka: using KAFKA_BOOTSTRAP_SERVERS={external}")
            return external
        say(f"Kafka: KAFKA_BOOTSTRAP_SERVERS={external} does not answer; starting a local broker")
    return kafka.start_kafka(settings.state_dir, settings.kafka_port).address


def _up_postgres(settings: StackSettings, *, fast: bool, tls: bool) -> tuple[str, Path | None]:
    """The server's URL, and its CA when it is ours and speaks TLS only."""
    running = postgres.running_postgres(settings.state_dir)
    if running is not None:
        say(f"PostgreSQL already running at {running.address} (pid {running.pid})")
        return running.url, running.ca_file if running.tls else None
    external = settings.external_database_url
    if external is not None:
        if postgres.url_reachable(external):
            say("PostgreSQL: using DATABASE_URL")
            return postgres.asyncpg_url(external), None
        say("PostgreSQL: DATABASE_URL does not answer; starting a local server")
    server = postgres.start_postgres(settings.state_dir, settings.postgres_port, fast=fast, tls=tls)
    return server.url, server.ca_file if tls else None


def up(
    settings: StackSettings,
    *,
    with_services: bool = True,
    fast: bool = False,
    tls: bool = False,
    databases: Sequence[str] = DEFAULT_DATABASES,
) -> Endpoints:
    """Start whatever part of the stack is not running yet and return its endpoints.

    tls=True starts PostgreSQL TLS-only with a test CA; the services verify it (verify-full).
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with stopwatch() as elapsed:
        database_url, ca_file = _up_postgres(settings, fast=fast, tls=tls)
        endpoints = Endpoints(_up_kafka(settings), database_url, ca_file)
        created = postgres.create_databases(endpoints.database_url, databases)
        if created:
            say(f"created databases: {', '.join(created)}")
        if with_services:
            services.start_services(
                settings.state_dir,
                kafka_bootstrap_servers=endpoints.kafka_bootstrap_servers,
                database_env=endpoints.database_env,
            )
        say(f"stack up in {elapsed()}; state in {settings.state_dir}")
    return endpoints


def down(settings: StackSettings) -> None:
    """Stop the services, Kafka and PostgreSQL this state dir records, by PID."""
    stopped = 0
    with stopwatch() as elapsed:
        for service in reversed(services.SERVICES):
            process = services.running_service(settings.state_dir, service)
            if process is not None:
                process.stop(timeout=15.0)
                say(f"stopped {service.name} (pid {process.pid})")
                stopped += 1
        broker = kafka.running_kafka(settings.state_dir)
        if broker is not None:
            broker.stop()
            say(f"stopped Kafka (pid {broker.pid})")
            stopped += 1
        server = postgres.running_postgres(settings.state_dir)
        if server is not None:
            server.stop()
            say(f"stopped PostgreSQL (pid {server.pid})")
            stopped += 1
    say(f"stopped {stopped} process(es) in {elapsed()}" if stopped else "nothing was running")


def running_endpoints(settings: StackSettings) -> Endpoints:
    """Endpoints of the running stack (ours, or the external servers from the environment)."""
    broker = kafka.running_kafka(settings.state_dir)
    server = postgres.running_postgres(settings.state_dir)
    bootstrap = broker.address if broker is not None else settings.external_kafka
    database_url = server.url if server is not None else settings.external_database_url
    if bootstrap is None or database_url is None:
        missing = "Kafka" if bootstrap is None else "PostgreSQL"
        if bootstrap is None and database_url is None:
            missing = "Kafka and PostgreSQL"
        raise StackError(f"{missing} not running: run `python -m devstack up`")
    ca_file = server.ca_file if server is not None and server.tls else None
    return Endpoints(bootstrap, postgres.asyncpg_url(database_url), ca_file)


def _row(component: str, state: str, *details: str) -> str:
    return f"{component:<22} {state:<9} {'  '.join(details)}".rstrip()


def status_lines(settings: StackSettings) -> list[str]:
    """One line per component: running (where, which PID), external, stopped or absent."""
    lines = []
    broker = kafka.running_kafka(settings.state_dir)
    if broker is not None:
        version = f"Kafka {kafka.kafka_version()}"
        lines.append(_row("kafka", "running", broker.address, f"pid {broker.pid}", version))
    elif settings.external_kafka:
        lines.append(
            _row("kafka", "external", f"{settings.external_kafka} (KAFKA_BOOTSTRAP_SERVERS)")
        )
    else:
        lines.append(_row("kafka", "stopped"))
    server = postgres.running_postgres(settings.state_dir)
    if server is not None:
        lines.append(_row("postgres", "running", server.address, f"pid {server.pid}"))
    elif settings.external_database_url:
        parts = urlsplit(settings.external_database_url)
        address = f"{parts.hostname}:{parts.port or postgres.DEFAULT_PORT}"
        lines.append(_row("postgres", "external", f"{address} (DATABASE_URL)"))
    else:
        lines.append(_row("postgres", "stopped"))
    for service in services.SERVICES:
        process = services.running_service(settings.state_dir, service)
        if process is not None:
            lines.append(_row(service.name, "running", process.address, f"pid {process.pid}"))
        else:
            lines.append(_row(service.name, "stopped" if service.exists() else "absent"))
    lines.append(f"state and logs in {settings.state_dir}")
    return lines


def settings_from_environment(state_dir: Path | None = None) -> StackSettings:
    """StackSettings for this process's environment."""
    return StackSettings.from_environ(os.environ, state_dir)
