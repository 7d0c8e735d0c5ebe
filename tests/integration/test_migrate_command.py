"""`python -m <service> migrate` creates and migrates each service's database on its own, and
`grants ROLE` then prints the DML rights on every table the migrations made."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import pytest

from common_core.runtime.database import connect_raw
from common_core.testing.service_process import REPO_ROOT
from devstack.postgres import with_database

pytestmark = pytest.mark.integration


async def _run(module: str, env: dict[str, str], *arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, f"{module} {arguments}:\n{out.decode()}\n{err.decode()}"
    return out.decode()


@pytest.mark.parametrize(
    "module", ["cj_assessment_service", "llm_provider_service", "submission_service"]
)
async def test_migrate_makes_the_database_and_grants_cover_its_tables(
    module: str, postgres_server_url: str
) -> None:
    database = f"t_{uuid.uuid4().hex}"
    env = {"DATABASE_URL": postgres_server_url, "SERVICE_DATABASE_NAME": database}

    await _run(module, env, "migrate")
    grants = (await _run(module, env, "grants", "runtime_role")).splitlines()

    connection = await connect_raw(with_database(postgres_server_url, database))
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
    finally:
        await connection.close()
    [table_grant] = [g for g in grants if g.startswith("GRANT SELECT, INSERT, UPDATE, DELETE")]
    assert {row["tablename"] for row in tables} >= {"event_outbox"}
    for row in tables:
        assert f'"public"."{row["tablename"]}"' in table_grant
    assert f'GRANT CONNECT ON DATABASE "{database}" TO "runtime_role";' in grants
