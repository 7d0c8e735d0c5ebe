"""Alembic environment: runs on the connection handed over by `run_migrations`.

Services keep only their `versions/` folders; `common_core.runtime.migrations` puts them beside
common_core's own versions (the outbox and inbox tables, branch `common_core`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through common_core.runtime.migrations (or `python -m "
        "common_core.runtime.migrations`), which hands alembic an open connection"
    )
context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
