"""Starting `python -m cj_assessment_service` as a subprocess for crash and scale-out tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from common_core.testing import eventually
from devstack import free_port

REPO_ROOT = Path(__file__).resolve().parents[4]


class ServiceProcess:
    """One service instance in its own process, on its own HTTP port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self._env = {**os.environ, **env, "HTTP_PORT": str(self.port)}
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="cj-service-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the instance's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the process and wait until `/healthz` answers."""
        # Popen only forks; waiting for the process happens without blocking below.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "cj_assessment_service"],
            env=self._env,
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        async def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"service exited early; log: {self.log_tail()}")
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(f"{self.url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, timeout=60, interval=0.2, what="service healthy")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send a signal to the process (by PID) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), killing if needed, and close the log."""
        self.kill(signal.SIGTERM)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's output, for failure messages."""
        self._log.flush()
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    async def get(self, path: str) -> Any:
        """GET a JSON document from the instance."""
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.url}{path}")
            return response.json() if response.status_code == 200 else None

    async def metrics_text(self) -> str:
        """The instance's Prometheus exposition."""
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{self.url}/metrics")).text


@contextlib.asynccontextmanager
async def service_process(env: dict[str, str]) -> AsyncIterator[ServiceProcess]:
    """A started instance, always stopped (by PID) at the end."""
    instance = ServiceProcess(env)
    try:
        await instance.start()
        yield instance
    finally:
        instance.stop()


def process_env(database_url: str, bootstrap: str, prefix: str, **extra: str) -> dict[str, str]:
    """Environment for an instance under test."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": prefix,
        "MONITOR_INTERVAL_SECONDS": "0.5",
        "LOG_LEVEL": "INFO",
        **extra,
    }


async def group_members(bootstrap: str, group_id: str) -> int:
    """How many members a stable consumer group has (0 while rebalancing)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    for response in responses:
        for group in response.groups:
            state, members = group[2], group[5]
            if state == "Stable":
                return len(members)
    return 0
