"""Run Alembic migrations for a service: its own versions plus common_core's outbox/inbox branch.

Migrations run on one connection under a PostgreSQL advisory lock, so several instances starting
at once apply them exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from common_core.runtime.database import PLAIN_TLS, DatabaseTLS, create_engine, ensure_database

_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 7_240_501_337  # arbitrary, fixed: serialises migrations of one database


def alembic_config(service_versions: Sequence[Path] = ()) -> Config:
    """An Alembic config with common_core's environment and every versions folder given."""
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS_DIR))
    locations = [str(_MIGRATIONS_DIR / "versions"), *(str(p) for p in service_versions)]
    config.set_main_option("version_locations", " ".join(locations))
    config.set_main_option("path_separator", "space")
    return config


async def run_migrations(
    url: str,
    service_versions: Sequence[Path] = (),
    *,
    target: str = "heads",
    downgrade: bool = False,
    create_database: bool = True,
    tls: DatabaseTLS = PLAIN_TLS,
) -> None:
    """Upgrade (or downgrade) the database at `url` to `target`."""
    if create_database:
        await ensure_database(url, tls)
    config = alembic_config(service_versions)

    def apply(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config.attributes["connection"] = connection
        if downgrade:
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)

    engine = create_engine(url, pool_size=1, tls=tls)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(apply)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m common_core.runtime.migrations URL [--versions DIR ...] [--downgrade TARGET]`."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("url")
    parser.add_argument("--versions", type=Path, action="append", default=[])
    parser.add_argument("--downgrade", metavar="TARGET")
    args = parser.parse_args(argv)
    if args.downgrade:
        asyncio.run(run_migrations(args.url, args.versions, target=args.downgrade, downgrade=True))
    else:
        asyncio.run(run_migrations(args.url, args.versions))


if __name__ == "__main__":
    main()
