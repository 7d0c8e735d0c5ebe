"""Fixtures for tests against the real Kafka broker and PostgreSQL (see infra/devstack).

Servers start lazily, on the first test that asks for them, and once per session:
- the environment wins: KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point at servers to use;
- with a Docker engine and DEVSTACK_USE_TESTCONTAINERS=1, testcontainers provides them;
- otherwise devstack runs them as local processes on free ports (never 9092/5432, where a
  `make stack-up` may be running) in a temporary state dir, and stops them by PID at the end.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

from common_core.runtime.blas_threads import limit_blas_threads
from devstack import free_port, start_kafka, start_postgres, wait_for_kafka
from devstack.chromium import ChromiumBinaries, provision_axe_core, provision_chromium
from devstack.postgres import RunningPostgres, asyncpg_url, libpq_url, with_database

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

    from common_core.testing.browser import OpenChromium

# CI explores the same examples every run (a red CI must mean a real change); locally hypothesis
# keeps searching new ones, and what it finds is replayed from its database.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

# The service workers tests run in this process fit Bradley-Terry models as the service does.
limit_blas_threads()


def _use_testcontainers() -> bool:
    docker = bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()
    return docker and os.environ.get("DEVSTACK_USE_TESTCONTAINERS") == "1"


@contextlib.contextmanager
def _temporary_state_dir(component: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"devstack-{component}-"))
    path.chmod(0o755)  # the postgres account must be able to reach its data dir inside
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> Iterator[str]:
    """Bootstrap address of a real Kafka broker for the whole session."""
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        wait_for_kafka(external, timeout=30.0)
        yield external
    elif _use_testcontainers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield str(container.get_bootstrap_server())
    else:
        with _temporary_state_dir("kafka") as state_dir:
            broker = start_kafka(state_dir, free_port(), die_with_parent=True)
            try:
                yield broker.address
            finally:
                broker.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """postgresql+asyncpg URL of a real PostgreSQL server (its maintenance database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield asyncpg_url(external)
    elif _use_testcontainers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:15", driver="asyncpg") as container:
            yield str(container.get_connection_url())
    else:
        with _temporary_state_dir("postgres") as state_dir:
            server = start_postgres(state_dir, free_port(), fast=True)
            try:
                yield server.url
            finally:
                server.stop()


@pytest.fixture(scope="session")
def tls_postgres() -> Iterator[RunningPostgres]:
    """A PostgreSQL of its own that speaks TLS only, with a test CA (`.ca_file`) and SCRAM
    passwords for every role but the superuser: for the DATABASE_SSL* and least-privilege tests
    only (started by devstack even when DATABASE_URL names another server), stopped by PID."""
    with _temporary_state_dir("postgres-tls") as state_dir:
        server = start_postgres(state_dir, free_port(), fast=True, tls=True)
        try:
            yield server
        finally:
            server.stop()


async def _execute_on_server(server_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(libpq_url(server_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test module, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex}"
    await _execute_on_server(postgres_server_url, f'create database "{name}"')
    yield with_database(postgres_server_url, name)
    await _execute_on_server(postgres_server_url, f'drop database if exists "{name}" with (force)')


@pytest.fixture
def make_topic_name() -> Callable[[], str]:
    """A factory of unique topic names (`test.<uuid hex>`) for tests that need several."""
    return lambda: f"test.{uuid.uuid4().hex}"


@pytest.fixture
def unique_topic(make_topic_name: Callable[[], str]) -> str:
    """A topic name no other test uses."""
    return make_topic_name()


@pytest.fixture(scope="session")
def chromium_ready() -> ChromiumBinaries:
    """Chromium, ChromeDriver and axe-core, installed now when missing (as PostgreSQL is): a
    machine where that cannot happen fails with the command to run, it does not skip."""
    binaries = provision_chromium()
    provision_axe_core()
    return binaries


@pytest.fixture
def chromium_window(chromium_ready: ChromiumBinaries) -> Iterator[OpenChromium]:
    """A factory of headless Chromium windows (`common_core.testing.browser.open_chromium`),
    each stopped by PID, with its profile removed, when the test ends."""
    from common_core.testing.browser import open_chromium

    with contextlib.ExitStack() as windows:

        def open_window(*, width: int, height: int) -> Chrome:
            return windows.enter_context(open_chromium(width=width, height=height))

        yield open_window
