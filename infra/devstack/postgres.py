"""PostgreSQL: find or install the server binaries, run a private cluster, create databases.

With tls=True the cluster speaks TLS only (`ssl=on`; plain TCP connections are refused): a test
CA and a server certificate for 127.0.0.1 and localhost are made on first start in the cluster's
`tls/` folder (`RunningPostgres.ca_file` is the CA clients trust). The `postgres` superuser
still needs no password; every other role authenticates with SCRAM, so password settings are
really checked.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devstack.processes import (
    StackError,
    child_pids,
    ensure_port_free,
    failure,
    kill_pids,
    pid_alive,
    port_is_open,
    read_pid_file,
    run,
    say,
    stop_pid,
    stopwatch,
    wait_until,
    wait_until_reaped,
)

DEFAULT_PORT = 5432
READY_TIMEOUT = 60.0
SUPERUSER = "postgres"
# Durability off: for throwaway test clusters only, never for the demo.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
_DEBIAN_INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"
# Where a cluster lives when the postgres account cannot reach the state dir (see postgres_dir).
# /var/tmp: kept across reboots like the state dir itself; root creates it (mode 755) and hands
# only the cluster's own directory to the postgres account.
SHARED_HOME_ROOT = Path("/var/tmp/huleedu-devstack")  # noqa: S108 - root-owned, see above
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MAX_SOCKET_DIR = 90  # unix socket paths are limited to ~107 bytes including the file name
TLS_DIR = "tls"
TLS_HOSTS = ("127.0.0.1", "localhost")
# TLS only over TCP; the superuser without a password (as without TLS), everyone else with SCRAM.
_TLS_HBA = """\
local     all  all                     trust
hostssl   all  postgres  127.0.0.1/32  trust
hostssl   all  all       127.0.0.1/32  scram-sha-256
hostnossl all  all       0.0.0.0/0     reject
"""


def _version_key(initdb: str) -> tuple[int, ...]:
    version = Path(initdb).parents[1].name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def find_postgres_bin() -> Path | None:
    """The bin dir of the newest PostgreSQL server installed (Debian layout first, then PATH)."""
    candidates = sorted(glob.glob(_DEBIAN_INITDB_GLOB), key=_version_key)
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _running_as_root() -> bool:
    return os.geteuid() == 0


def provision_postgres() -> Path:
    """Return the server bin dir, installing Debian's postgresql package when root."""
    bin_dir = find_postgres_bin()
    if bin_dir is not None:
        return bin_dir
    install = "apt-get update && apt-get install -y postgresql"
    if not _running_as_root():
        raise StackError(
            f"PostgreSQL server binaries not found (looked for {_DEBIAN_INITDB_GLOB} and initdb "
            f"on PATH): run `sudo sh -c '{install}'` (or install PostgreSQL 15+ another way)"
        )
    say("PostgreSQL not found; installing it with apt-get ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with stopwatch() as elapsed:
        run(["apt-get", "update"], what="apt-get update", env=env)
        run(["apt-get", "install", "-y", "postgresql"], what="apt-get install postgresql", env=env)
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise StackError(f"installed postgresql but found no {_DEBIAN_INITDB_GLOB}")
    say(f"installed PostgreSQL ({bin_dir}) in {elapsed()}")
    return bin_dir


def _as_superuser_os_account(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run server commands as the postgres account then."""
    return ["runuser", "-u", SUPERUSER, "--", *command] if _running_as_root() else command


def _hand_to_postgres_account(path: Path) -> None:
    if _running_as_root():
        try:
            account = pwd.getpwnam(SUPERUSER)
        except KeyError as error:
            raise StackError(f"no `{SUPERUSER}` OS account to run PostgreSQL as root") from error
        os.chown(path, account.pw_uid, account.pw_gid)


def _check_postgres_account_can_write(path: Path) -> None:
    probe = _as_superuser_os_account(["test", "-w", str(path)])
    if _running_as_root() and subprocess.run(probe, check=False).returncode != 0:
        raise StackError(
            f"the `{SUPERUSER}` account cannot reach {path}: make its parent directories "
            "traversable (chmod o+x) or use a state dir elsewhere (DEVSTACK_STATE_DIR)"
        )


# --- URLs -----------------------------------------------------------------------------------


def server_url(port: int, host: str = "127.0.0.1", database: str = "postgres") -> str:
    """The SQLAlchemy asyncpg URL of a trust-auth server devstack runs."""
    return f"postgresql+asyncpg://{SUPERUSER}@{host}:{port}/{database}"


def libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix (for psql, asyncpg.connect, ...)."""
    parts = urlsplit(url)
    scheme = "postgresql" if parts.scheme.startswith(("postgresql", "postgres")) else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme))


def asyncpg_url(url: str) -> str:
    """The same URL in SQLAlchemy's postgresql+asyncpg form."""
    return urlunsplit(urlsplit(url)._replace(scheme="postgresql+asyncpg"))


def with_database(url: str, database: str) -> str:
    """The same URL pointing at another database on the same server."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def url_reachable(url: str) -> bool:
    """Whether the server in a database URL accepts TCP connections."""
    parts = urlsplit(url)
    return port_is_open(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT)


# --- The server -----------------------------------------------------------------------------


def postgres_dir(state_dir: Path) -> Path:
    """Where the cluster's data, socket and log live: inside the state dir, unless devstack runs
    as root and the postgres account cannot reach it (a clone in root's home, mode 700, or in a
    `mktemp -d`); then in a directory of its own under SHARED_HOME_ROOT named after the state
    dir, so the same state dir always finds the same cluster."""
    inside = state_dir / "postgres"
    if not _running_as_root() or _postgres_account_can_enter(state_dir):
        return inside
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:16]
    return SHARED_HOME_ROOT / digest / "postgres"


def _postgres_account_can_enter(path: Path) -> bool:
    """Can the postgres account traverse to `path` (its nearest existing ancestor, when it does
    not exist yet: what is created inside later gets the default, traversable mode)?"""
    existing = next(p for p in (path, *path.parents) if p.exists())
    probe = ["runuser", "-u", SUPERUSER, "--", "test", "-x", str(existing)]
    return subprocess.run(probe, check=False, capture_output=True).returncode == 0


def postgres_pid_file(state_dir: Path) -> Path:
    """The file holding the postmaster's PID."""
    return state_dir / "postgres.pid"


@dataclass(frozen=True)
class RunningPostgres:
    """A PostgreSQL cluster started by devstack, identified by its postmaster PID."""

    pid: int
    port: int
    data_dir: Path
    bin_dir: Path
    log_path: Path
    pid_file: Path | None = None
    fast: bool = False
    tls: bool = False

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that signed a tls=True server's certificate."""
        return self.data_dir.parent / TLS_DIR / "ca.pem"

    @property
    def address(self) -> str:
        """host:port the server listens on."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """postgresql+asyncpg URL of the maintenance database `postgres`."""
        return server_url(self.port)

    def alive(self) -> bool:
        """Whether the postmaster still runs."""
        return pid_alive(self.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server with `pg_ctl stop -m fast`, falling back to signals on its PID."""
        if self.alive():
            command = [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir)]
            command += ["-m", "fast", "-w", "-t", str(int(timeout))]
            subprocess.run(
                _as_superuser_os_account(command),
                cwd=self.data_dir.parent,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            stop_pid(self.pid, timeout=10.0)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as in a crash (no checkpoint, no shutdown).

        A server started with fast=True (synchronous_commit=off) may lose its last commits.
        """
        kill_pids([self.pid, *child_pids(self.pid)])
        # Until its parent reaps it, the dead postmaster is a zombie whose PID still answers
        # kill(pid, 0), and the next postmaster would refuse the lock files naming it.
        wait_until_reaped(self.pid, timeout=10.0)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def restart(self, timeout: float = READY_TIMEOUT) -> RunningPostgres:
        """Start the server again on the same data dir, port and settings (after `kill`/`stop`).

        PostgreSQL replays its WAL first when the previous run crashed.
        """
        return start_postgres(
            self.data_dir.parents[1], self.port, fast=self.fast, tls=self.tls, timeout=timeout
        )


def _socket_dir(home: Path, port: int) -> Path:
    preferred = home / "sock"
    if len(str(preferred)) <= _MAX_SOCKET_DIR:
        return preferred
    return Path(tempfile.gettempdir()) / f"devstack-pg-{port}"


def _postmaster_pid(data_dir: Path) -> int:
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError) as error:
        message = f"PostgreSQL started but {data_dir}/postmaster.pid is unreadable"
        raise StackError(message) from error


def _tls_settings(home: Path) -> list[str]:
    """Make the test CA, the server certificate and pg_hba.conf on first use; the server
    settings that use them."""
    folder = home / TLS_DIR
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.crt", folder / "server.key"
    hba_file = folder / "pg_hba.conf"
    if not ca_file.exists():
        import trustme  # a dev dependency: only TLS clusters (tests) need it

        folder.mkdir(mode=0o755, exist_ok=True)
        authority = trustme.CA(organization_name="HuleEdu devstack test CA")
        server = authority.issue_cert(*TLS_HOSTS)
        server.cert_chain_pems[0].write_to_path(str(cert_file))
        server.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)  # PostgreSQL refuses a key others can read
        hba_file.write_text(_TLS_HBA)
        for path in (folder, cert_file, key_file, hba_file):
            _hand_to_postgres_account(path)
        authority.cert_pem.write_to_path(str(ca_file))
    return [
        "ssl=on",
        f"ssl_cert_file={cert_file}",
        f"ssl_key_file={key_file}",
        f"hba_file={hba_file}",
    ]


def _initdb(bin_dir: Path, data_dir: Path, *, fast: bool) -> None:
    command = [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust"]
    command += ["--encoding=UTF8", "--locale=C"]
    if fast:
        command.append("--no-sync")
    run(_as_superuser_os_account(command), what="initdb", cwd=data_dir.parent)


def _is_ready(bin_dir: Path, port: int) -> bool:
    probe = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"]
    return subprocess.run(probe, stdin=subprocess.DEVNULL, check=False).returncode == 0


def start_postgres(
    state_dir: Path,
    port: int = DEFAULT_PORT,
    *,
    fast: bool = False,
    tls: bool = False,
    timeout: float = READY_TIMEOUT,
) -> RunningPostgres:
    """Start a private cluster on 127.0.0.1:port (initdb on first use) and wait until ready.

    fast=True turns durability off (fsync, synchronous_commit, full_page_writes): tests only.
    tls=True serves TLS only, with a test CA (see the module's docstring).
    """
    state_dir = state_dir.resolve()
    already = running_postgres(state_dir)
    if already is not None:
        raise StackError(f"a PostgreSQL from {state_dir} already runs (pid {already.pid})")
    bin_dir = provision_postgres()
    ensure_port_free(port, "PostgreSQL", "POSTGRES_PORT")
    state_dir.mkdir(parents=True, exist_ok=True)
    home = postgres_dir(state_dir)
    if not home.is_relative_to(state_dir):
        say(
            f"the `{SUPERUSER}` account cannot reach {state_dir}, so PostgreSQL keeps its data "
            f"in {home}"
        )
        for parent in (SHARED_HOME_ROOT, home.parent):
            parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            parent.chmod(0o755)
    data_dir, log_path, socket_dir = home / "data", home / "postgres.log", _socket_dir(home, port)
    for path in (home, socket_dir):
        path.mkdir(parents=True, exist_ok=True)
        _hand_to_postgres_account(path)
    _check_postgres_account_can_write(home)
    settings = ["listen_addresses=127.0.0.1", "max_connections=300"]
    settings += list(FAST_SETTINGS) if fast else []
    settings += _tls_settings(home) if tls else []
    options = [f"-p {port}", f"-k {shlex.quote(str(socket_dir))}"]
    options += [f"-c {shlex.quote(setting)}" for setting in settings]

    with stopwatch() as elapsed:
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bin_dir, data_dir, fast=fast)
        start = [str(bin_dir / "pg_ctl"), "start", "-D", str(data_dir), "-l", str(log_path)]
        start += ["-w", "-t", str(int(timeout)), "-o", " ".join(options)]
        try:
            run(
                _as_superuser_os_account(start),
                what="pg_ctl start",
                cwd=home,
                timeout=timeout + 10,
            )
        except StackError as error:
            raise failure(str(error), log_path) from error
        pid_file = postgres_pid_file(state_dir)
        server = RunningPostgres(
            _postmaster_pid(data_dir), port, data_dir, bin_dir, log_path, pid_file, fast, tls
        )
        pid_file.write_text(f"{server.pid}\n")
        try:
            wait_until(
                lambda: _is_ready(bin_dir, port),
                timeout=timeout,
                what=f"PostgreSQL on {server.address}",
                log_path=log_path,
            )
        except StackError:
            server.stop(timeout=10.0)
            raise
        say(f"PostgreSQL ready on {server.address} (pid {server.pid}) in {elapsed()}")
    return server


def running_postgres(state_dir: Path) -> RunningPostgres | None:
    """The cluster a previous `start_postgres` left running in state_dir, if it still runs."""
    state_dir = state_dir.resolve()
    home = postgres_dir(state_dir)
    data_dir = home / "data"
    pid = read_pid_file(postgres_pid_file(state_dir), marker=str(data_dir))
    bin_dir = find_postgres_bin()
    if pid is None or bin_dir is None:
        return None
    try:  # postmaster.pid: pid, data dir, start time, port, ...
        port = int((data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None
    tls = (home / TLS_DIR / "ca.pem").exists()
    log_path, pid_file = home / "postgres.log", postgres_pid_file(state_dir)
    return RunningPostgres(pid, port, data_dir, bin_dir, log_path, pid_file, tls=tls)


def _psql(url: str, sql: str) -> str:
    bin_dir = find_postgres_bin()
    psql = str(bin_dir / "psql") if bin_dir else shutil.which("psql")
    if psql is None:
        raise StackError("psql not found: install the postgresql client to create databases")
    return run(
        [psql, "-X", "-v", "ON_ERROR_STOP=1", "-Atq", "-d", libpq_url(url), "-c", sql],
        what=f"psql {sql!r}",
    )


def create_databases(url: str, names: Iterable[str]) -> list[str]:
    """Create the named databases on the server that are missing; return the ones created."""
    wanted = list(names)
    for name in wanted:
        if not _DATABASE_NAME.fullmatch(name):
            raise StackError(f"refusing odd database name {name!r}")
    existing = set(_psql(url, "select datname from pg_database").split())
    created = [name for name in wanted if name not in existing]
    for name in created:
        _psql(url, f'create database "{name}"')
    return created
