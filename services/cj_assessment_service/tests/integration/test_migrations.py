"""The CJ schema migrates up, down and up again on a real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cj_assessment_service.entrypoints.runtime import VERSIONS_DIR
from common_core.runtime.database import create_engine
from common_core.runtime.migrations import run_migrations

pytestmark = pytest.mark.integration


async def _pairs_layout(engine: AsyncEngine) -> tuple[set[str], list[str] | None]:
    async with engine.connect() as connection:
        indexes = set(
            (
                await connection.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'cj_pairs'")
                )
            ).scalars()
        )
        options = await connection.scalar(
            text("SELECT reloptions FROM pg_class WHERE relname = 'cj_pairs'")
        )
    return indexes, options


async def _batch_columns(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(
            (
                await connection.execute(
                    text(
                        "SELECT column_name FROM information_schema.columns "
                        "WHERE table_name = 'cj_batches'"
                    )
                )
            ).scalars()
        )


_USAGE_COLUMNS = {
    "cached_prompt_tokens",
    "cache_write_tokens",
    "estimated_cost_usd",
    "unpriced_answers",
    "judges",
}
# cj0008: when a batch's texts were purged or erased, and the essay set it was read from.
_LIFECYCLE_COLUMNS = {"texts_purged_at", "essay_set_id"}


async def test_cj_migrations_run_up_down_and_up_again(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await run_migrations(database_url, [VERSIONS_DIR])
        assert await _batch_columns(engine) >= _USAGE_COLUMNS | _LIFECYCLE_COLUMNS
        await run_migrations(database_url, [VERSIONS_DIR], target="cj0007", downgrade=True)
        assert not _LIFECYCLE_COLUMNS & await _batch_columns(engine)
        await run_migrations(database_url, [VERSIONS_DIR], target="cj0002", downgrade=True)
        assert not _USAGE_COLUMNS & await _batch_columns(engine)
        await run_migrations(database_url, [VERSIONS_DIR])
        indexes, options = await _pairs_layout(engine)
        # Answers are heap-only updates: no index on the answer columns, room on each page.
        assert "ix_cj_pairs_batch_status" not in indexes
        assert {"uq_cj_pairs_request_id", "uq_cj_pairs_orientation"} <= indexes
        assert options == ["fillfactor=50"]

        await run_migrations(database_url, [VERSIONS_DIR], target="cj0001", downgrade=True)
        indexes, options = await _pairs_layout(engine)
        assert "ix_cj_pairs_batch_status" in indexes
        assert options is None

        await run_migrations(database_url, [VERSIONS_DIR], target="base", downgrade=True)
        indexes, _ = await _pairs_layout(engine)
        assert not indexes

        await run_migrations(database_url, [VERSIONS_DIR])
        await run_migrations(database_url, [VERSIONS_DIR])  # idempotent
        assert (await _pairs_layout(engine))[1] == ["fillfactor=50"]
    finally:
        await engine.dispose()


async def test_answers_recorded_before_cj0005_make_their_batch_cost_unknown(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    batch_id = uuid.uuid4()
    try:
        await run_migrations(database_url, [VERSIONS_DIR])
        await run_migrations(database_url, [VERSIONS_DIR], target="cj0002", downgrade=True)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO cj_batches (id, entity_ref, correlation_id, request_event_id, "
                    "state, essay_count, budget, planned, completed, failed, request_settings) "
                    "VALUES (:id, 'old', :id, :id, 'WAITING_CALLBACKS', 4, 6, 6, 3, 1, '{}')"
                ),
                {"id": batch_id},
            )
        await run_migrations(database_url, [VERSIONS_DIR])
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT unpriced_answers, estimated_cost_usd, judges FROM cj_batches "
                        "WHERE id = :id"
                    ),
                    {"id": batch_id},
                )
            ).one()
        # Their answers carried no cost: unknown, so the batch's cost will be null, not 0.
        assert row.unpriced_answers == 4
        assert row.estimated_cost_usd == 0
        assert row.judges == []
    finally:
        async with engine.begin() as connection:
            await connection.execute(
                text("DELETE FROM cj_batches WHERE id = :id"), {"id": batch_id}
            )
        await engine.dispose()
