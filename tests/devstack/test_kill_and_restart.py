"""devstack's clusters: SIGKILL a broker or a PostgreSQL and restart it on its data dir; a
PostgreSQL for a state dir its account cannot reach."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from devstack import fetch_cluster_metadata, free_port, restart_kafka, start_kafka, start_postgres
from devstack.postgres import libpq_url, postgres_dir, running_postgres
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


@pytest.mark.integration
async def test_a_state_dir_the_postgres_account_cannot_reach_still_runs_a_cluster() -> None:
    """A clone in a private directory (root's home is mode 700, as is any `mktemp -d`): the
    cluster's data goes where the postgres account can reach it, and is found again there."""
    private = Path(tempfile.mkdtemp(prefix="devstack-private-"))  # mode 700
    state_dir = private / "clone" / ".stack"
    home = postgres_dir(state_dir)
    try:
        server = start_postgres(state_dir, free_port(), fast=True)
        try:
            connection = await asyncpg.connect(libpq_url(server.url))
            try:
                assert await connection.fetchval("select 1") == 1
            finally:
                await connection.close()
            assert running_postgres(state_dir) is not None
            assert server.data_dir == home / "data"
        finally:
            server.stop()
        if os.geteuid() == 0:  # as root the postgres account runs the server
            assert not home.is_relative_to(private)
    finally:
        shutil.rmtree(private, ignore_errors=True)
        if not home.is_relative_to(private):
            shutil.rmtree(home.parent, ignore_errors=True)
