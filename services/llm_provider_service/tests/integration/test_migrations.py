"""The LLM provider schema migrates up, down and up again, and matches `adapters/tables.py`."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from common_core.runtime.database import create_engine
from common_core.runtime.migrations import run_migrations
from llm_provider_service.adapters.tables import metadata
from llm_provider_service.entrypoints.runtime import VERSIONS_DIR

pytestmark = pytest.mark.integration


async def _columns(database_url: str) -> dict[str, set[str]]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                )
            )
            found: dict[str, set[str]] = {}
            for table, column in rows:
                found.setdefault(table, set()).add(column)
            return found
    finally:
        await engine.dispose()


async def test_the_schema_migrates_down_and_up_and_matches_the_tables(database_url: str) -> None:
    await run_migrations(database_url, [VERSIONS_DIR])
    await run_migrations(
        database_url, [VERSIONS_DIR], target="llm_provider_service@base", downgrade=True
    )
    assert not set(metadata.tables) & set(await _columns(database_url))

    await run_migrations(database_url, [VERSIONS_DIR])
    await run_migrations(database_url, [VERSIONS_DIR])  # idempotent
    columns = await _columns(database_url)
    for name, table in metadata.tables.items():
        assert columns[name] == {column.name for column in table.columns}, name
    assert "event_outbox" in columns  # common_core's outbox, for batch-mode callbacks
