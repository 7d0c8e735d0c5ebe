"""The Kafka broker and PostgreSQL a benchmark runs against: the environment's, or its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from common_core.runtime.database import asyncpg_dsn
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity, KafkaSecuritySettings
from devstack import free_port, start_kafka, start_postgres, wait_for_kafka

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class BenchStack:
    """Addresses of the servers a benchmark uses."""

    kafka_bootstrap_servers: str
    postgres_server_url: str
    kafka_security: KafkaSecurity = PLAINTEXT
    """How the benchmark's own clients connect (services read the same KAFKA_* variables)."""


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """Use KAFKA_BOOTSTRAP_SERVERS (with the KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_*
    settings) / DATABASE_URL when set; otherwise start private servers on free ports (durable
    settings, as in production) and stop them by PID afterwards."""
    state = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    state.chmod(0o755)
    stops = []
    try:
        kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        security = PLAINTEXT
        if kafka:
            security = KafkaSecuritySettings().kafka_security
            if security.protocol == "PLAINTEXT":  # devstack's probe speaks only plaintext
                wait_for_kafka(kafka, timeout=30.0)
        else:
            broker = start_kafka(state, free_port(), die_with_parent=True)
            stops.append(broker.stop)
            kafka = broker.address
        database = os.environ.get("DATABASE_URL")
        if not database:
            postgres = start_postgres(state, free_port())
            stops.append(postgres.stop)
            database = postgres.url
        yield BenchStack(
            kafka_bootstrap_servers=kafka, postgres_server_url=database, kafka_security=security
        )
    finally:
        for stop in reversed(stops):
            stop()
        shutil.rmtree(state, ignore_errors=True)


async def drop_database(server_url: str, name: str) -> None:
    """Drop a benchmark's database on the server of `server_url` (connections to it closed)."""
    admin = make_url(server_url).set(database="postgres").render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(admin))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
