"""The container image's definition (infra/docker/Dockerfile, .dockerignore).

No Docker engine runs in the test environment, so the image is not built here: these tests run
the Dockerfile's HEALTHCHECK command itself against a local HTTP server, and check the build's
shape (stages, user) and what the build context leaves out.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "infra" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (line.partition(" ") for line in lines)
        if keyword and not keyword.startswith("#")
    ]


def _health_check_command() -> list[str]:
    (arguments,) = [rest for keyword, rest in _instructions() if keyword == "HEALTHCHECK"]
    exec_form = arguments[arguments.index("CMD ") + len("CMD ") :]
    command: list[str] = json.loads(exec_form)
    return command


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    """A server answering `/healthz` with 200 on a free port of 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _free_port() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    port = server.server_address[1]
    server.server_close()
    return port


def _run_health_check(env: dict[str, str]) -> int:
    command = _health_check_command()
    assert command[0] == "python"
    result = subprocess.run(
        [sys.executable, *command[1:]],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return result.returncode


def test_the_health_check_asks_the_operations_port_when_it_is_set(
    health_server: ThreadingHTTPServer,
) -> None:
    ops_port = health_server.server_address[1]
    env = {"OPS_HTTP_PORT": str(ops_port), "HTTP_PORT": str(_free_port())}
    assert _run_health_check(env) == 0


def test_the_health_check_asks_the_http_port_without_an_operations_port(
    health_server: ThreadingHTTPServer,
) -> None:
    assert _run_health_check({"HTTP_PORT": str(health_server.server_address[1])}) == 0


def test_the_health_check_fails_when_nothing_answers() -> None:
    assert _run_health_check({"OPS_HTTP_PORT": str(_free_port())}) != 0


def test_the_health_check_fails_on_an_error_status(
    health_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Health, "status", 503)
    assert _run_health_check({"OPS_HTTP_PORT": str(health_server.server_address[1])}) != 0


def test_the_runtime_stage_copies_only_the_venv_and_runs_as_non_root() -> None:
    instructions = _instructions()
    stages = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    assert len(stages) == 2
    runtime = instructions[stages[1] :]
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /app/.venv /app/.venv"]
    (user,) = [rest for keyword, rest in runtime if keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}


def test_the_build_context_leaves_out_local_state() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {
        ".git",
        ".venv",
        ".tools",
        ".stack",
        ".env",
        "infra/kafka/target",
        "benchmarks/results",
        "**/__pycache__",
        ".mypy_cache",
        ".pytest_cache",
    } <= patterns
