"""devstack's TLS-only PostgreSQL (`up --tls`, `start_postgres(tls=True)`)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from common_core.runtime.database import DatabaseTLS, connect_raw
from devstack.postgres import RunningPostgres
from devstack.stack import Endpoints


class TestEndpoints:
    def test_a_tls_server_is_exported_with_verify_full_and_its_ca(self) -> None:
        endpoints = Endpoints(
            "127.0.0.1:9092", "postgresql+asyncpg://postgres@127.0.0.1:5432/x", Path("/s/ca.pem")
        )

        assert endpoints.database_env == {
            "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/x",
            "DATABASE_SSLMODE": "verify-full",
            "DATABASE_SSLROOTCERT": "/s/ca.pem",
        }
        assert "DATABASE_SSLMODE=verify-full DATABASE_SSLROOTCERT=/s/ca.pem" in (
            endpoints.shell_exports()
        )

    def test_a_plain_server_exports_only_its_url(self) -> None:
        endpoints = Endpoints("127.0.0.1:9092", "postgresql+asyncpg://postgres@127.0.0.1:5432/x")

        assert endpoints.database_env == {
            "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/x"
        }


@pytest.mark.integration
class TestTlsServer:
    async def test_a_connection_without_tls_is_refused(self, tls_postgres: RunningPostgres) -> None:
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
            await connect_raw(tls_postgres.url, DatabaseTLS(mode="disable"))

    async def test_roles_other_than_the_superuser_need_their_own_password(
        self, tls_postgres: RunningPostgres
    ) -> None:
        tls = DatabaseTLS(mode="verify-full", root_cert=tls_postgres.ca_file)
        admin = await connect_raw(tls_postgres.url, tls)
        try:
            await admin.execute(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'devstack_probe')"
                " THEN CREATE ROLE devstack_probe LOGIN PASSWORD 'probe-password'; END IF; END $$"
            )
        finally:
            await admin.close()

        wrong_password = tls_postgres.url.replace("postgres@", "devstack_probe:wrong@", 1)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await connect_raw(wrong_password, tls)
        right_password = tls_postgres.url.replace("postgres@", "devstack_probe:probe-password@", 1)
        connection = await connect_raw(right_password, tls)
        await connection.close()
