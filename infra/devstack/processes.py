"""Process and port plumbing shared by the Kafka, PostgreSQL and service launchers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A stack component could not be provisioned, started or stopped."""


def say(message: str) -> None:
    """Print a one-line progress message on stderr."""
    print(f"devstack: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], str]]:
    """Yield a function that formats the seconds elapsed since entering the block."""
    started = time.monotonic()
    yield lambda: f"{time.monotonic() - started:.1f}s"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, what: str, env_var: str) -> None:
    """Raise a clear error when a port we are about to listen on is taken."""
    if port_is_open("127.0.0.1", port):
        raise StackError(f"port {port} for {what} is already in use; set {env_var} to another port")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that it does not exist."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def failure(message: str, log_path: Path) -> StackError:
    """A StackError whose text ends with the tail of the component's log."""
    return StackError(f"{message}\n--- last lines of {log_path} ---\n{log_tail(log_path)}")


def run(
    command: Sequence[str],
    *,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> str:
    """Run a command to completion and return its output; raise StackError with it on failure."""
    try:
        completed = subprocess.run(
            list(command),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as error:
        raise StackError(f"{what} failed: {command[0]} not found") from error
    except subprocess.TimeoutExpired as error:
        raise StackError(f"{what} timed out after {timeout:.0f}s: {' '.join(command)}") from error
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        raise StackError(
            f"{what} failed (exit {completed.returncode}): {' '.join(command)}\n{output}"
        )
    return completed.stdout


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (reaping it first if it is our child)."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): kill(0) succeeding is the best we know
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_command_line(pid: int) -> str:
    """The command line of a running process ('' when it cannot be read)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def read_pid_file(path: Path, marker: str) -> int | None:
    """The live PID recorded in a pid file, or None when it is missing, stale or recycled.

    marker must appear in the process's command line, so a PID reused by an unrelated
    process is never mistaken for ours (and never signalled).
    """
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not pid_alive(pid):
        return None
    command_line = pid_command_line(pid)
    if command_line and marker not in command_line:
        return None
    return pid


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until a process is gone; True when it exited within the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """Stop exactly this PID: SIGTERM, wait up to timeout, then SIGKILL."""
    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if wait_for_exit(pid, timeout):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_for_exit(pid, 10.0):
        raise StackError(f"process {pid} survived SIGKILL")


def child_pids(pid: int) -> list[int]:
    """The PIDs of a process's direct children (empty without procfs)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid):
            children.append(int(stat.parent.name))
    return children


def kill_pids(pids: Sequence[int], timeout: float = 10.0) -> None:
    """SIGKILL exactly these PIDs (a crash: no clean shutdown) and wait until they are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        if not wait_for_exit(pid, timeout):
            raise StackError(f"process {pid} survived SIGKILL")


def wait_until_reaped(pid: int, timeout: float) -> bool:
    """Wait until a dead process's entry is gone (a zombie's PID still answers kill(pid, 0))."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class RunningProcess:
    """A background process started (or found) by devstack, identified by its PID."""

    name: str
    pid: int
    address: str
    log_path: Path
    pid_file: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def alive(self) -> bool:
        """Whether the process still runs."""
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after timeout) and remove its pid file."""
        stop_pid(self.pid, timeout)
        if self.popen is not None:
            with contextlib.suppress(ChildProcessError):
                self.popen.wait(timeout=1.0)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the process, as in a crash; its data stays as it was for a restart."""
        kill_pids([self.pid])
        if self.popen is not None:
            with contextlib.suppress(ChildProcessError):
                self.popen.wait(timeout=1.0)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


def spawn(
    name: str,
    command: Sequence[str],
    *,
    address: str,
    log_path: Path,
    pid_file: Path | None,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    die_with_parent: bool = False,
) -> RunningProcess:
    """Start a detached background process logging to log_path and record its PID.

    The process gets its own session so Ctrl-C in the caller's terminal does not reach it;
    die_with_parent (Linux, needs setpriv) makes it exit when the caller dies, which suits test
    fixtures: a killed pytest run leaves no broker behind.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = list(command)
    setpriv = shutil.which("setpriv") if die_with_parent else None
    if setpriv is not None:
        # util-linux setpriv sets PR_SET_PDEATHSIG, then execs the command under the same PID.
        # Linux ties this to the thread that spawns, so spawn from a long-lived thread.
        argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if pid_file is not None:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{popen.pid}\n")
    return RunningProcess(name, popen.pid, address, log_path, pid_file, popen)


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log_path: Path,
    process: RunningProcess | None = None,
    interval: float = 0.25,
) -> None:
    """Poll ready() until it is true; fail early if the process dies, late on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if process is not None and not process.alive():
            raise failure(f"{what}: process {process.pid} exited during start-up", log_path)
        time.sleep(interval)
    raise failure(f"{what}: not ready after {timeout:.0f}s", log_path)
