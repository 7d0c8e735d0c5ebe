"""The Apache Kafka broker: fetch its classpath, run it in KRaft combined mode, probe it."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import re
import shutil
import socket
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack.processes import (
    RunningProcess,
    StackError,
    ensure_port_free,
    free_port,
    port_is_open,
    read_pid_file,
    run,
    say,
    spawn,
    stopwatch,
    wait_until,
)

KAFKA_DIR = Path(__file__).resolve().parents[1] / "kafka"
POM = KAFKA_DIR / "pom.xml"
LIBS_DIR = KAFKA_DIR / "target" / "libs"
DEFAULT_PORT = 9092
READY_TIMEOUT = 120.0
_VERSION_PROPERTY = re.compile(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>")
_HEAP = ("-Xms512m", "-Xmx1g", "-XX:+UseG1GC")


def kafka_version() -> str:
    """The broker version pinned in infra/kafka/pom.xml."""
    match = _VERSION_PROPERTY.search(POM.read_text())
    if match is None:
        raise StackError(f"no <kafka.version> property in {POM}")
    return match.group(1)


def find_java() -> str:
    """The java executable (JAVA_HOME first, then PATH), or a clear error."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java 17+ is needed to run Kafka and was not found: install it "
            "(apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return java


def provision_kafka() -> Path:
    """Make sure the broker classpath exists, fetching it with Maven when missing; return it."""
    find_java()
    LIBS_DIR.parent.mkdir(parents=True, exist_ok=True)
    # Several processes may provision at once: one fetches, the others wait for the whole
    # classpath instead of starting a broker on the jars copied so far.
    with (LIBS_DIR.parent / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if any(LIBS_DIR.glob("*.jar")):
            return LIBS_DIR
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                f"Maven is needed to fetch the Kafka broker into {LIBS_DIR} and was not found: "
                "install it (apt-get install -y maven)"
            )
        say(f"fetching Kafka {kafka_version()} with Maven into {LIBS_DIR} ...")
        with stopwatch() as elapsed:
            run([mvn, "-B", "-q", "-f", str(POM), "package"], what="maven fetch of Kafka")
        if not any(LIBS_DIR.glob("*.jar")):
            raise StackError(f"maven finished but {LIBS_DIR} holds no jars")
        say(f"fetched Kafka classpath in {elapsed()}")
    return LIBS_DIR


def kafka_dir(state_dir: Path) -> Path:
    """Where the broker's config, data and log live inside a state dir."""
    return state_dir / "kafka"


def kafka_pid_file(state_dir: Path) -> Path:
    """The file holding the broker's PID."""
    return state_dir / "kafka.pid"


def _server_properties(port: int, controller_port: int, data_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "true",
        "log.retention.ms": str(24 * 3600 * 1000),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "8388608",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


_LOG4J_PROPERTIES = """\
# Everything the broker logs goes to stdout, which devstack redirects into kafka.log.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
"""


def _cluster_id() -> str:
    """A random cluster id the way Kafka makes them (URL-safe base64 of a UUID)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like command-line flags
            return text


def start_kafka(
    state_dir: Path,
    port: int = DEFAULT_PORT,
    *,
    controller_port: int | None = None,
    timeout: float = READY_TIMEOUT,
    die_with_parent: bool = False,
) -> RunningProcess:
    """Start a single-node KRaft broker on 127.0.0.1:port and wait until it serves metadata.

    Storage under state_dir/kafka is formatted once and reused by later starts, and so is the
    controller port of the previous start when none is given and it is free.
    """
    state_dir = state_dir.resolve()
    already = running_kafka(state_dir)
    if already is not None:
        raise StackError(f"a broker from {state_dir} already runs (pid {already.pid})")
    libs = provision_kafka()
    java = find_java()
    ensure_port_free(port, "Kafka", "KAFKA_PORT")
    home = kafka_dir(state_dir)
    data_dir = home / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = home / "kafka.log"
    config = home / "server.properties"
    log4j = home / "log4j.properties"
    controller_port = controller_port or _configured_controller_port(config) or free_port()
    config.write_text(_server_properties(port, controller_port, data_dir))
    log4j.write_text(_LOG4J_PROPERTIES)
    jvm = [java, f"-Dlog4j.configuration={log4j.as_uri()}", f"-Dkafka.logs.dir={home}"]
    classpath = ["-cp", f"{libs}/*"]

    with stopwatch() as elapsed:
        if not (data_dir / "meta.properties").exists():
            storage_tool = [*jvm, *classpath, "kafka.tools.StorageTool", "format"]
            options = ["-t", _cluster_id(), "-c", str(config), "--ignore-formatted"]
            run([*storage_tool, *options], what="formatting Kafka storage", cwd=home)
        broker = spawn(
            "kafka",
            [*jvm, *_HEAP, *classpath, "kafka.Kafka", str(config)],
            address=f"127.0.0.1:{port}",
            log_path=log_path,
            pid_file=kafka_pid_file(state_dir),
            cwd=home,
            die_with_parent=die_with_parent,
        )
        try:
            wait_until(
                lambda: _serves_metadata("127.0.0.1", port),
                timeout=timeout,
                what=f"Kafka on 127.0.0.1:{port}",
                log_path=log_path,
                process=broker,
            )
        except StackError as error:
            broker.stop(timeout=10.0)
            if "ClassNotFound" in str(error) or "NoClassDefFound" in str(error):
                hint = f"incomplete Kafka classpath? delete {LIBS_DIR.parent} and retry"
                raise StackError(f"{error}\n{hint}") from error
            raise
        say(f"Kafka {kafka_version()} ready on {broker.address} (pid {broker.pid}) in {elapsed()}")
    return broker


def _configured_port(config: Path, key: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in config.read_text().splitlines():
            if line.startswith(f"{key}="):
                return int(line.rsplit(":", 1)[-1])
    return None


def _configured_controller_port(config: Path) -> int | None:
    port = _configured_port(config, "controller.quorum.voters")
    return port if port is not None and not port_is_open("127.0.0.1", port) else None


def restart_kafka(
    state_dir: Path, *, timeout: float = READY_TIMEOUT, die_with_parent: bool = False
) -> RunningProcess:
    """Start the broker of state_dir again on its data dir and ports (after a kill or stop)."""
    config = kafka_dir(state_dir.resolve()) / "server.properties"
    port = _configured_port(config, "advertised.listeners")
    if port is None:
        raise StackError(f"no broker was started in {state_dir} (no port in {config})")
    return start_kafka(state_dir, port, timeout=timeout, die_with_parent=die_with_parent)


def running_kafka(state_dir: Path) -> RunningProcess | None:
    """The broker a previous `start_kafka` left running in state_dir, if it still runs."""
    home = kafka_dir(state_dir.resolve())
    config = home / "server.properties"
    pid = read_pid_file(kafka_pid_file(state_dir), marker=str(config))
    if pid is None:
        return None
    address = "unknown"
    with contextlib.suppress(OSError):
        for line in config.read_text().splitlines():
            if line.startswith("advertised.listeners="):
                address = line.split("//", 1)[-1]
    pid_file = kafka_pid_file(state_dir.resolve())
    return RunningProcess("kafka", pid, address, home / "kafka.log", pid_file)


# --- A tiny Kafka protocol client: just enough for a Metadata round trip. -------------------


@dataclass(frozen=True)
class Broker:
    """One broker as listed in a Metadata response."""

    node_id: int
    host: str
    port: int


@dataclass(frozen=True)
class ClusterMetadata:
    """What a Metadata (v4) request tells about a cluster."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[Broker, ...]
    topics: tuple[str, ...]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def _unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self._data, self._offset)
        self._offset += struct.calcsize(fmt)
        result: int = value
        return result

    def int8(self) -> int:
        return self._unpack(">b")

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def skip(self, fmt: str) -> None:
        self._offset += struct.calcsize(fmt)

    def skip_int32_array(self) -> None:
        count = self.int32()  # read before touching _offset: int32() advances it
        self._offset += 4 * max(count, 0)

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        text = self._data[self._offset : self._offset + length].decode()
        self._offset += length
        return text

    def string(self) -> str:
        return self.nullable_string() or ""


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _metadata_round_trip(host: str, port: int, timeout: float) -> ClusterMetadata:
    api_key, api_version, correlation_id, client_id = 3, 4, 1, b"devstack"
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(client_id)) + client_id
    body = struct.pack(">ib", -1, 0)  # all topics, do not auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _receive_exactly(sock, 4))
        reader = _Reader(_receive_exactly(sock, size))
    if reader.int32() != correlation_id:
        raise ConnectionError("response does not match the request")
    reader.int32()  # throttle_time_ms
    brokers = []
    for _ in range(reader.int32()):
        node_id, broker_host, broker_port = reader.int32(), reader.string(), reader.int32()
        reader.nullable_string()  # rack
        brokers.append(Broker(node_id, broker_host, broker_port))
    cluster_id = reader.nullable_string()
    controller_id = reader.int32()
    topics = []
    for _ in range(reader.int32()):
        reader.int16()  # error_code
        topics.append(reader.string())
        reader.int8()  # is_internal
        for _ in range(reader.int32()):  # partitions
            reader.skip(">hii")  # error_code, partition_index, leader_id
            reader.skip_int32_array()  # replica_nodes
            reader.skip_int32_array()  # isr_nodes
    return ClusterMetadata(cluster_id, controller_id, tuple(brokers), tuple(topics))


def _split_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    addresses = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise StackError(f"bad Kafka bootstrap address {item!r} (expected host:port)")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def fetch_cluster_metadata(bootstrap: str, timeout: float = 5.0) -> ClusterMetadata:
    """Ask the first reachable bootstrap server for cluster metadata (Kafka Metadata v4)."""
    last_error: Exception | None = None
    for host, port in _split_bootstrap(bootstrap):
        try:
            return _metadata_round_trip(host, port, timeout)
        except (OSError, struct.error, UnicodeDecodeError) as error:
            last_error = error
    raise StackError(f"no Kafka broker answered metadata at {bootstrap}: {last_error}")


def _serves_metadata(host: str, port: int) -> bool:
    if not port_is_open(host, port):
        return False
    try:
        return bool(_metadata_round_trip(host, port, timeout=5.0).brokers)
    except (OSError, struct.error, UnicodeDecodeError):
        return False


def wait_for_kafka(bootstrap: str, timeout: float = 60.0) -> ClusterMetadata:
    """Wait until a broker at bootstrap answers metadata listing at least one broker."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            metadata = fetch_cluster_metadata(bootstrap)
            if metadata.brokers:
                return metadata
        except StackError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise StackError(f"Kafka at {bootstrap} lists no brokers after {timeout:.0f}s")
        time.sleep(0.5)
