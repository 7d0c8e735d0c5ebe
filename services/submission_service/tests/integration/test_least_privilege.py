"""Least privilege on a TLS-only PostgreSQL: `python -m submission_service migrate` runs as the
owner role, `grants` prints what the runtime role needs, and the service then works as a role
with DML rights only (verify-full, password from a file); with migration at start-up left on,
that role stops the service at once with a message naming the setting."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from common_core.runtime.database import DatabaseTLS, connect_raw
from common_core.runtime.settings import ServiceSettings
from common_core.testing.service_process import REPO_ROOT, running_service
from common_core.testing.waiting import eventually
from devstack.postgres import RunningPostgres, with_database
from submission_service.testing.process import process_env

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Roles:
    """An owner (DDL) role and a runtime role, each with its password in a file."""

    database: str
    owner: str
    runtime: str
    env_of: Mapping[str, dict[str, str]]
    """The database settings of each role (URL, password file, verify-full)."""


def _tls(server: RunningPostgres) -> DatabaseTLS:
    return DatabaseTLS(mode="verify-full", root_cert=server.ca_file)


async def _execute(server: RunningPostgres, database: str, statements: list[str]) -> None:
    connection = await connect_raw(with_database(server.url, database), _tls(server))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
async def roles(tls_postgres: RunningPostgres, tmp_path: Path) -> Roles:
    """Two fresh roles on the TLS server; the service's database does not exist yet."""
    suffix = uuid.uuid4().hex[:10]
    owner, runtime = f"submission_owner_{suffix}", f"submission_app_{suffix}"
    env_of: dict[str, dict[str, str]] = {}
    for role, extra in ((owner, " CREATEDB"), (runtime, "")):
        password = uuid.uuid4().hex
        secret = tmp_path / f"{role}.password"
        secret.write_text(password)
        await _execute(
            tls_postgres, "postgres", [f"CREATE ROLE {role} LOGIN PASSWORD '{password}'{extra}"]
        )
        env_of[role] = {
            "DATABASE_URL": tls_postgres.url.replace("postgres@", f"{role}@", 1),
            "DATABASE_PASSWORD_FILE": str(secret),
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": str(tls_postgres.ca_file),
            "SERVICE_DATABASE_NAME": f"submission_{suffix}",
        }
    return Roles(f"submission_{suffix}", owner, runtime, env_of)


async def _run_command(env: Mapping[str, str], *arguments: str) -> str:
    """`python -m submission_service <arguments>`; its standard output, or a failure with its
    output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "submission_service",
        *arguments,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, f"{arguments} failed:\n{out.decode()}\n{err.decode()}"
    return out.decode()


async def _migrate_and_grant(server: RunningPostgres, roles: Roles) -> list[str]:
    owner_env = roles.env_of[roles.owner]
    await _run_command(owner_env, "migrate")
    grants = (await _run_command(owner_env, "grants", roles.runtime)).splitlines()
    # The owner owns the database and its tables, so it can hand the rights on.
    owner = ServiceSettings.model_validate({name.lower(): v for name, v in owner_env.items()})
    connection = await connect_raw(owner.service_database_url, owner.database_tls)
    try:
        for statement in grants:
            await connection.execute(statement)
    finally:
        await connection.close()
    return grants


async def test_the_service_works_as_a_dml_only_role_after_an_owner_migrated(
    tls_postgres: RunningPostgres, kafka_bootstrap_servers: str, roles: Roles, tmp_path: Path
) -> None:
    grants = await _migrate_and_grant(tls_postgres, roles)
    assert any(g.startswith("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE") for g in grants)
    assert not any("alembic_version" in g for g in grants)
    env = process_env(
        roles.env_of[roles.runtime]["DATABASE_URL"],
        kafka_bootstrap_servers,
        **roles.env_of[roles.runtime],
        DATABASE_MIGRATE_ON_START="false",
    )

    async with running_service(
        "submission_service", env=env, log_dir=tmp_path, ready_path="/healthz/ready"
    ) as service:
        headers = {"X-Anonymous-Token": str(uuid.uuid4())}
        async with httpx.AsyncClient(base_url=service.url, headers=headers) as client:
            created = await client.post(
                "/api/assessments/responses",
                json={"module_slug": "argument", "question_id": "short-essay", "answer_text": "x"},
            )
            assert created.status_code == 201, created.text
            completed = await client.patch(
                f"/api/assessments/responses/{created.json()['id']}",
                json={"completed_at": "2026-11-22T12:00:00Z"},
            )
            assert completed.status_code == 200, completed.text
            listed = await client.get("/api/assessments/responses")
            assert [r["id"] for r in listed.json()["responses"]] == [created.json()["id"]]

        async def outbox_published() -> bool:
            connection = await connect_raw(
                with_database(tls_postgres.url, roles.database), _tls(tls_postgres)
            )
            try:
                unpublished = int(
                    await connection.fetchval(
                        "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"
                    )
                )
                published = int(
                    await connection.fetchval(
                        "SELECT count(*) FROM event_outbox WHERE published_at IS NOT NULL"
                    )
                )
            finally:
                await connection.close()
            return unpublished == 0 and published > 0

        await eventually(outbox_published, timeout=60, what="the scoring request relayed")
        log = service.log_path.read_text()
    assert "permission denied" not in log.lower()  # no worker lacked a right along the way


async def test_with_migration_at_start_the_dml_only_role_stops_the_service(
    tls_postgres: RunningPostgres, kafka_bootstrap_servers: str, roles: Roles, tmp_path: Path
) -> None:
    await _migrate_and_grant(tls_postgres, roles)
    runtime_env = roles.env_of[roles.runtime]
    env = process_env(runtime_env["DATABASE_URL"], kafka_bootstrap_servers, **runtime_env)

    with pytest.raises(AssertionError, match="exited during start-up") as caught:
        await _start_and_stop(env, tmp_path)

    assert '"event": "startup_failed"' in str(caught.value)
    assert "DATABASE_MIGRATE_ON_START" in str(caught.value)
    assert "permission denied for table alembic_version" in str(caught.value)


async def _start_and_stop(env: dict[str, str], log_dir: Path) -> None:
    """Start the service; stop it (by PID) if it comes up."""
    async with running_service("submission_service", env=env, log_dir=log_dir):
        pass
