"""Running `python -m <service>` as a subprocess in tests, stopped by PID."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def service_process(
    module: str,
    env: dict[str, str],
    port: int,
    *,
    timeout: float = 60.0,
    unset: tuple[str, ...] = (),
) -> Iterator[str]:
    """Start the module, wait for `/healthz`, yield its base URL; terminate it by PID.

    `unset` names inherited environment variables the process must not see (API keys)."""
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the process' life
        prefix=f"{module}-", suffix=".log", delete=False
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", module],
        env={
            **{k: v for k, v in os.environ.items() if k not in unset},
            **env,
            "HTTP_PORT": str(port),
            "HTTP_HOST": "127.0.0.1",
        },
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{module} exited early:\n{_tail(log_file.name)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not healthy in {timeout}s:\n{_tail(log_file.name)}")
            time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log_file.close()
        Path(log_file.name).unlink(missing_ok=True)


def _tail(path: str, lines: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
