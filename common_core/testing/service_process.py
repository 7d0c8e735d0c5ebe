"""Starting a service as a real `python -m <service>` process for end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx

from common_core.testing.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
_SECRET_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def free_tcp_port() -> int:
    """A port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServiceProcess:
    """A running service process, its HTTP port and its log."""

    module: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the service's log, for assertion messages."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_records(self) -> list[dict[str, Any]]:
        """Every line of the log as a JSON object; fails naming the first line that is not one."""
        records = []
        for number, line in enumerate(self.log_path.read_text(errors="replace").splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise AssertionError(f"{self.log_path}:{number} is not a JSON object: {line[:300]}")
            records.append(record)
        return records

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit within `timeout`; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


class StartOptions(TypedDict, total=False):
    """The optional keywords of `start_service`, for `running_service`."""

    port: int | None
    ready_timeout: float
    keep_provider_keys: bool
    unset_prefixes: Collection[str]
    ready_path: str


def _spawn(
    module: str, env: Mapping[str, str], log_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv of our own interpreter
            [sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, log_path


async def start_service(
    module: str,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    ready_timeout: float = 120.0,
    keep_provider_keys: bool = False,
    unset_prefixes: Collection[str] = (),
    ready_path: str = "/healthz",
) -> ServiceProcess:
    """Start `python -m module` with `env` over this process's environment; wait for `ready_path`.

    Provider API keys are removed unless asked for, so tests never reach a real LLM provider.
    Inherited variables whose names start with one of `unset_prefixes` are dropped (`env` may
    still set such variables).
    """
    port = port or free_tcp_port()
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(tuple(unset_prefixes))
    }
    full_env = {**inherited, **env, "HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1"}
    if not keep_provider_keys:
        for name in _SECRET_VARIABLES:
            full_env.pop(name, None)
    process, log_path = _spawn(module, full_env, log_dir / f"{module}-{port}.log")
    service = ServiceProcess(module, port, process, log_path)

    async def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{module} exited during start-up:\n{service.log_tail()}")
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(f"{service.url}{ready_path}")).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        await eventually(
            healthy, timeout=ready_timeout, interval=0.2, what=f"{module} {ready_path}"
        )
    except AssertionError as exc:
        service.stop()
        if "exited during start-up" in str(exc):
            raise
        raise AssertionError(f"{exc}\n{module}'s log:\n{service.log_tail()}") from None
    except BaseException:
        service.stop()
        raise
    return service


@contextlib.asynccontextmanager
async def running_service(
    module: str, *, env: Mapping[str, str], log_dir: Path, **options: Unpack[StartOptions]
) -> AsyncIterator[ServiceProcess]:
    """A started service (`start_service` with `options`), stopped (by PID) when the block ends."""
    service = await start_service(module, env=env, log_dir=log_dir, **options)
    try:
        yield service
    finally:
        service.stop()
