"""The privileges a service's runtime role needs: DML on its tables, nothing else.

Read from the migrated database itself (every table and sequence in the schema, except Alembic's
version table), so the statements always match the migrations applied. The runtime role gets no
right on `alembic_version`: a service started with DATABASE_MIGRATE_ON_START=true under that role
fails at once, naming the cause, instead of running half-privileged.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import make_url

from common_core.runtime.database import PLAIN_TLS, DatabaseTLS, connect_raw

_OBJECTS = """
SELECT c.relname, c.relkind = 'S' AS is_sequence
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S')
  AND c.relname <> 'alembic_version'
ORDER BY c.relname
"""


def quote_identifier(name: str) -> str:
    """`name` as a PostgreSQL quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def dml_grant_statements(
    database: str,
    schema: str,
    role: str,
    tables: Sequence[str],
    sequences: Sequence[str],
) -> list[str]:
    """The GRANT statements giving `role` DML rights on `tables` and use of `sequences`."""
    who = quote_identifier(role)
    statements = [
        f"GRANT CONNECT ON DATABASE {quote_identifier(database)} TO {who};",
        f"GRANT USAGE ON SCHEMA {quote_identifier(schema)} TO {who};",
    ]
    qualified = [f"{quote_identifier(schema)}.{quote_identifier(name)}" for name in tables]
    if qualified:
        statements.append(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {', '.join(qualified)} TO {who};"
        )
    sequenced = [f"{quote_identifier(schema)}.{quote_identifier(name)}" for name in sequences]
    if sequenced:
        statements.append(f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(sequenced)} TO {who};")
    return statements


async def read_dml_grants(url: str, role: str, tls: DatabaseTLS = PLAIN_TLS) -> list[str]:
    """The GRANT statements `role` needs on the migrated database at `url`."""
    database = make_url(url).database
    if not database:
        raise ValueError("database URL names no database")
    connection = await connect_raw(url, tls)
    try:
        schema = await connection.fetchval("SELECT current_schema()")
        rows = await connection.fetch(_OBJECTS)
    finally:
        await connection.close()
    tables = [row["relname"] for row in rows if not row["is_sequence"]]
    sequences = [row["relname"] for row in rows if row["is_sequence"]]
    return dml_grant_statements(database, str(schema), role, tables, sequences)
