"""The shared engine on the real PostgreSQL: no statement parameter in a described error."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from common_core.runtime.database import create_engine
from common_core.runtime.error_text import describe_error

pytestmark = pytest.mark.integration

MARKER = "EssayMarker-9d41"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT CAST(:essay AS integer)",  # asyncpg cannot encode the argument
        "SELECT CAST(CAST(:essay AS text) AS integer)",  # PostgreSQL cannot parse the value
    ],
)
async def test_a_failing_statement_is_described_without_its_parameter(
    database_url: str, statement: str
) -> None:
    engine = create_engine(database_url, pool_size=1)
    try:
        with pytest.raises(DBAPIError) as raised:
            async with engine.connect() as connection:
                await connection.execute(text(statement), {"essay": MARKER})
    finally:
        await engine.dispose()

    # SQLAlchemy leaves the parameters out; the driver's own message may still quote the value.
    assert "[SQL parameters hidden due to hide_parameters=True]" in str(raised.value)
    assert MARKER not in describe_error(raised.value)
