"""`python -m <service> migrate` creates and migrates each service's database on its own, and
`grants ROLE` then prints the DML rights on every table the migrations made. A database that
refuses the connection or does not answer ends either command with one JSON line naming the
setting to check."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import trustme

from common_core.runtime.database import DatabaseTLS, connect_raw
from common_core.runtime.kernel import EXIT_CONFIG
from common_core.testing.service_process import REPO_ROOT, free_tcp_port
from devstack.postgres import RunningPostgres, with_database

pytestmark = pytest.mark.integration


def _verify_full(server: RunningPostgres) -> DatabaseTLS:
    return DatabaseTLS(mode="verify-full", root_cert=server.ca_file)


async def _run(module: str, env: dict[str, str], *arguments: str) -> str:
    code, out, err = await _run_to_exit(module, env, *arguments)
    assert code == 0, f"{module} {arguments}:\n{out}\n{err}"
    return out


async def _run_to_exit(module: str, env: dict[str, str], *arguments: str) -> tuple[int, str, str]:
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
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


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


class TestRefusedOrSilentDatabase:
    """`migrate` and `grants` against a TLS-only server with SCRAM passwords, and a closed port."""

    @staticmethod
    async def _refusal(env: dict[str, str], *arguments: str) -> tuple[int, dict[str, Any]]:
        code, out, err = await _run_to_exit("cj_assessment_service", env, *arguments)
        lines = [line for line in (out + err).splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert "Traceback" not in lines[0]
        record: dict[str, Any] = json.loads(lines[0])
        return code, record

    @pytest.fixture
    async def probe_role(self, tls_postgres: RunningPostgres) -> str:
        """A role that logs in with a SCRAM password (`probe-password`)."""
        admin = await connect_raw(tls_postgres.url, _verify_full(tls_postgres))
        try:
            await admin.execute(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'migrate_probe')"
                " THEN CREATE ROLE migrate_probe LOGIN PASSWORD 'probe-password'; END IF; END $$"
            )
        finally:
            await admin.close()
        return "migrate_probe"

    async def test_an_untrusted_server_certificate_names_the_root_certificate(
        self, tls_postgres: RunningPostgres, tmp_path: Path
    ) -> None:
        stranger = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(stranger))
        env = {
            "DATABASE_URL": tls_postgres.url,
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": str(stranger),
        }
        code, record = await self._refusal(env, "migrate")
        assert code == EXIT_CONFIG
        assert record["event"] == "database_refused"
        assert (record["command"], record["setting"]) == ("migrate", "DATABASE_SSLROOTCERT")
        assert "certificate verify failed" in record["cause"]

    async def test_plain_text_to_a_tls_only_server_names_the_mode(
        self, tls_postgres: RunningPostgres
    ) -> None:
        env = {"DATABASE_URL": tls_postgres.url, "DATABASE_SSLMODE": "disable"}
        code, record = await self._refusal(env, "migrate")
        assert (code, record["event"], record["setting"]) == (
            EXIT_CONFIG,
            "database_refused",
            "DATABASE_SSLMODE",
        )

    async def test_a_refused_password_from_a_file_names_the_file_and_never_the_password(
        self, tls_postgres: RunningPostgres, probe_role: str, tmp_path: Path
    ) -> None:
        password_file = tmp_path / "password"
        password_file.write_text("not-the-probe-password\n")
        env = {
            "DATABASE_URL": tls_postgres.url.replace("postgres@", f"{probe_role}@", 1),
            "DATABASE_PASSWORD_FILE": str(password_file),
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": str(tls_postgres.ca_file),
        }
        code, record = await self._refusal(env, "grants", "runtime_role")
        assert (code, record["event"], record["setting"]) == (
            EXIT_CONFIG,
            "database_refused",
            "DATABASE_PASSWORD_FILE",
        )
        assert "password authentication failed" in record["cause"]
        assert "not-the-probe-password" not in json.dumps(record)

    async def test_a_server_that_does_not_answer_is_worth_a_retry(self) -> None:
        env = {"DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{free_tcp_port()}/x"}
        code, record = await self._refusal(env, "migrate")
        assert code == 1
        assert (record["event"], record["setting"]) == ("database_unreachable", "DATABASE_URL")
