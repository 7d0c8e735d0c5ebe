"""devstack's crash helpers: SIGKILL a broker or a PostgreSQL and restart it on its data dir."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack import fetch_cluster_metadata, free_port, restart_kafka, start_kafka, start_postgres
from devstack.postgres import libpq_url
from devstack.processes import pid_alive, port_is_open


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="devstack-crash-"))
    path.chmod(0o755)  # the postgres account must reach its data dir inside
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
@pytest.mark.slow
async def test_postgres_killed_and_restarted_keeps_committed_rows(state_dir: Path) -> None:
    server = start_postgres(state_dir, free_port())  # durable: fast=True may lose commits
    try:
        connection = await asyncpg.connect(libpq_url(server.url))
        await connection.execute("create table kept (n int); insert into kept values (7)")
        await connection.close()

        server.kill()

        assert not pid_alive(server.pid)
        assert not port_is_open("127.0.0.1", server.port)
        server = server.restart()
        connection = await asyncpg.connect(libpq_url(server.url))
        try:
            assert await connection.fetchval("select n from kept") == 7
        finally:
            await connection.close()
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.slow
def test_kafka_killed_and_restarted_serves_the_same_cluster(state_dir: Path) -> None:
    broker = start_kafka(state_dir, free_port())
    try:
        before = fetch_cluster_metadata(broker.address)

        broker.kill()

        assert not broker.alive()
        broker = restart_kafka(state_dir)
        after = fetch_cluster_metadata(broker.address)
        assert after.cluster_id == before.cluster_id
        assert after.brokers
    finally:
        broker.stop()
