"""The database pool collector (common_core.runtime.metrics.DATABASE_POOLS) reading the shared
engine's pool on the real PostgreSQL at scrape time."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from common_core.runtime.database import create_engine
from common_core.runtime.metrics import DATABASE_POOLS

pytestmark = pytest.mark.integration


def _sample(name: str, service: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"service": service})


class TestDatabasePoolCollector:
    async def test_reports_checked_out_connections_and_capacity_while_watched(
        self, database_url: str
    ) -> None:
        service = f"test_{uuid.uuid4().hex[:8]}"
        engine = create_engine(database_url, pool_size=2)  # capacity: 2 + max overflow 2
        try:
            with DATABASE_POOLS.watching(service, engine):
                idle = _sample("huleedu_db_pool_connections_checked_out", service)
                async with engine.connect() as first, engine.connect() as second:
                    await first.execute(text("SELECT 1"))
                    await second.execute(text("SELECT 1"))
                    busy = _sample("huleedu_db_pool_connections_checked_out", service)
                    capacity = _sample("huleedu_db_pool_connections_capacity", service)
                returned = _sample("huleedu_db_pool_connections_checked_out", service)
            after = _sample("huleedu_db_pool_connections_checked_out", service)
        finally:
            await engine.dispose()

        assert (idle, busy, returned) == (0, 2, 0)
        assert capacity == 4
        assert after is None  # no longer reported once the runtime is gone

    async def test_instances_of_one_service_in_one_process_are_summed(
        self, database_url: str
    ) -> None:
        service = f"test_{uuid.uuid4().hex[:8]}"
        engines = [
            create_engine(database_url, pool_size=1),
            create_engine(database_url, pool_size=3),
        ]
        try:
            with (
                DATABASE_POOLS.watching(service, engines[0]),
                DATABASE_POOLS.watching(service, engines[1]),
            ):
                async with engines[0].connect() as one, engines[1].connect() as other:
                    await one.execute(text("SELECT 1"))
                    await other.execute(text("SELECT 1"))
                    busy = _sample("huleedu_db_pool_connections_checked_out", service)
                    capacity = _sample("huleedu_db_pool_connections_capacity", service)
        finally:
            for engine in engines:
                await engine.dispose()

        assert busy == 2
        assert capacity == 2 + 6
