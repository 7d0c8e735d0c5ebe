"""The project's own services, run in the background against the local Kafka and PostgreSQL."""

from __future__ import annotations

import functools
import http.client
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import (
    RunningProcess,
    StackError,
    ensure_port_free,
    read_pid_file,
    say,
    spawn,
    stopwatch,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class Service:
    """A service package under services/ with the HTTP port it listens on."""

    name: str
    default_port: int
    port_env: str

    def port(self, environ: Mapping[str, str]) -> int:
        """The HTTP port, overridable through the service's environment variable."""
        return int(environ.get(self.port_env, self.default_port))

    def exists(self) -> bool:
        """Whether the service has an entry point yet (services/<name>/__main__.py)."""
        return (REPO_ROOT / "services" / self.name / "__main__.py").is_file()

    def marker(self) -> str:
        """What the service's command line contains, to recognise its PID."""
        return f"-m {self.name}"


SERVICES = (
    Service("submission_service", 8001, "SUBMISSION_HTTP_PORT"),
    Service("llm_provider_service", 8002, "LLM_PROVIDER_HTTP_PORT"),
    Service("cj_assessment_service", 8003, "CJ_HTTP_PORT"),
)


def services_dir(state_dir: Path) -> Path:
    """Where service logs and pid files live inside a state dir."""
    return state_dir / "services"


def running_service(state_dir: Path, service: Service) -> RunningProcess | None:
    """The service process a previous `start_services` left running, if it still runs."""
    home = services_dir(state_dir)
    pid_file = home / f"{service.name}.pid"
    pid = read_pid_file(pid_file, marker=service.marker())
    if pid is None:
        return None
    address = f"http://127.0.0.1:{service.port(os.environ)}"
    return RunningProcess(service.name, pid, address, home / f"{service.name}.log", pid_file)


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        connection.request("GET", HEALTH_PATH)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


# The service whose judging page needs a key to sign human judges' links.
JUDGING_SERVICE = "cj_assessment_service"


def _judge_secret_given(environ: Mapping[str, str]) -> bool:
    return bool(environ.get("JUDGE_LINK_SECRET") or environ.get("JUDGE_LINK_SECRET_FILE"))


def local_judge_link_secret(state_dir: Path) -> Path:
    """The local stack's key for human judges' links: made once per state dir (readable by its
    owner only), so links stay valid across restarts of the stack."""
    path = services_dir(state_dir) / "judge-link-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path


def start_services(
    state_dir: Path,
    *,
    kafka_bootstrap_servers: str,
    database_env: Mapping[str, str],
    python: str = sys.executable,
    timeout: float = READY_TIMEOUT,
) -> list[RunningProcess]:
    """Start every service that exists and is not running yet; wait for each /healthz.

    `database_env` holds DATABASE_URL and, for a TLS-only server, the settings that verify it.
    """
    home = services_dir(state_dir)
    started: list[tuple[RunningProcess, int]] = []
    with stopwatch() as elapsed:
        for service in SERVICES:
            if not service.exists():
                say(f"{service.name}: skipped (no services/{service.name}/__main__.py yet)")
                continue
            already = running_service(state_dir, service)
            if already is not None:
                say(f"{service.name}: already running at {already.address} (pid {already.pid})")
                continue
            port = service.port(os.environ)
            ensure_port_free(port, service.name, service.port_env)
            env = {
                **os.environ,
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
                **database_env,
                "HTTP_PORT": str(port),
            }
            if service.name == JUDGING_SERVICE and not _judge_secret_given(os.environ):
                env["JUDGE_LINK_SECRET_FILE"] = str(local_judge_link_secret(state_dir))
            process = spawn(
                service.name,
                [python, "-m", service.name],
                address=f"http://127.0.0.1:{port}",
                log_path=home / f"{service.name}.log",
                pid_file=home / f"{service.name}.pid",
                cwd=REPO_ROOT,
                env=env,
            )
            started.append((process, port))
        for process, port in started:
            try:
                wait_until(
                    functools.partial(_healthy, port),
                    timeout=timeout,
                    what=f"{process.name} ({process.address}{HEALTH_PATH})",
                    log_path=process.log_path,
                    process=process,
                )
            except StackError:
                for other, _ in started:
                    other.stop(timeout=10.0)
                raise
            say(f"{process.name}: healthy at {process.address} (pid {process.pid}) in {elapsed()}")
    return [process for process, _ in started]
