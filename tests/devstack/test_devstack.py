"""The local stack tool (infra/devstack) and the fixtures in the repo-root conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from devstack import fetch_cluster_metadata
from devstack.postgres import libpq_url


@pytest.mark.integration
class TestKafkaFixture:
    def test_broker_answers_a_metadata_request(self, kafka_bootstrap_servers: str) -> None:
        metadata = fetch_cluster_metadata(kafka_bootstrap_servers)

        assert metadata.brokers
        assert metadata.controller_id >= 0

    def test_topic_names_are_unique(
        self, unique_topic: str, make_topic_name: Callable[[], str]
    ) -> None:
        names = {unique_topic, make_topic_name(), make_topic_name()}

        assert len(names) == 3
        assert all(name.startswith("test.") for name in names)


@pytest.mark.integration
class TestPostgresFixtures:
    async def test_server_answers_select_1(self, postgres_server_url: str) -> None:
        connection = await asyncpg.connect(libpq_url(postgres_server_url))
        try:
            assert await connection.fetchval("select 1") == 1
        finally:
            await connection.close()

    async def test_database_url_is_a_fresh_database(
        self, database_url: str, postgres_server_url: str
    ) -> None:
        connection = await asyncpg.connect(libpq_url(database_url))
        try:
            name = await connection.fetchval("select current_database()")
            tables = await connection.fetchval(
                "select count(*) from pg_tables where schemaname = 'public'"
            )
        finally:
            await connection.close()

        assert name.startswith("t_")
        assert database_url != postgres_server_url
        assert tables == 0


class TestCli:
    def test_status_runs(self, tmp_path: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "status"],
            env={**os.environ, "DEVSTACK_STATE_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        assert "kafka" in result.stdout
        assert "postgres" in result.stdout
