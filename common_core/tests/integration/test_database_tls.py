"""DATABASE_SSL* and DATABASE_PASSWORD_FILE on a TLS-only PostgreSQL with a test CA: the engine
and the raw asyncpg connections (LISTEN, creating a database) connect the same way, and a server
whose certificate does not match is refused by both."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trustme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.database import (
    DatabaseTLS,
    connect_like,
    connect_raw,
    create_engine,
    ensure_database,
)
from common_core.runtime.settings import ServiceSettings
from devstack.postgres import RunningPostgres

pytestmark = pytest.mark.integration

_SSL_IN_USE = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def _settings(server: RunningPostgres, **overrides: Any) -> ServiceSettings:
    values: dict[str, Any] = {
        "database_url": server.url,
        "service_database_name": "postgres",
        "database_sslmode": "verify-full",
        "database_sslrootcert": server.ca_file,
        **overrides,
    }
    return ServiceSettings(**values)


@pytest.fixture
async def engine(tls_postgres: RunningPostgres) -> AsyncIterator[AsyncEngine]:
    """An engine on the TLS server built from verify-full settings, as the services build it."""
    settings = _settings(tls_postgres)
    engine = create_engine(settings.service_database_url, pool_size=1, tls=settings.database_tls)
    try:
        yield engine
    finally:
        await engine.dispose()


class TestVerifyFull:
    async def test_the_engine_queries_over_tls(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            assert await connection.scalar(text(_SSL_IN_USE)) is True

    async def test_a_raw_connection_like_the_engines_listens_over_tls(
        self, engine: AsyncEngine
    ) -> None:
        channel = f"tls_{uuid.uuid4().hex}"
        received: asyncio.Queue[str] = asyncio.Queue()
        listener = await connect_like(engine)
        try:
            assert await listener.fetchval(_SSL_IN_USE) is True
            await listener.add_listener(channel, lambda *args: received.put_nowait(args[3]))
            async with engine.begin() as connection:
                await connection.execute(text("SELECT pg_notify(:c, 'wake')"), {"c": channel})
            assert await asyncio.wait_for(received.get(), timeout=30) == "wake"
        finally:
            await listener.close()

    async def test_ensure_database_creates_a_database_over_tls(
        self, tls_postgres: RunningPostgres
    ) -> None:
        name = f"t_{uuid.uuid4().hex}"
        settings = _settings(tls_postgres, service_database_name=name)

        await ensure_database(settings.service_database_url, settings.database_tls)

        connection = await connect_raw(settings.service_database_url, settings.database_tls)
        try:
            assert await connection.fetchval("SELECT current_database()") == name
        finally:
            await connection.close()


class TestRefusedServers:
    async def test_a_host_name_the_certificate_does_not_name_is_refused(
        self, tls_postgres: RunningPostgres
    ) -> None:
        # 127.1 is 127.0.0.1 spelt differently: the same server, a name its certificate lacks.
        other_name = tls_postgres.url.replace("127.0.0.1", "127.1")
        tls = _settings(tls_postgres).database_tls

        with pytest.raises(ssl.SSLCertVerificationError, match=r"not valid for '127\.1'"):
            await connect_raw(other_name, tls)
        engine = create_engine(other_name, pool_size=1, tls=tls)
        try:
            with pytest.raises(ssl.SSLCertVerificationError, match=r"not valid for '127\.1'"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()

    async def test_verify_ca_checks_the_signer_but_not_the_name(
        self, tls_postgres: RunningPostgres
    ) -> None:
        other_name = tls_postgres.url.replace("127.0.0.1", "127.1")
        tls = _settings(tls_postgres, database_sslmode="verify-ca").database_tls

        connection = await connect_raw(other_name, tls)
        try:
            assert await connection.fetchval(_SSL_IN_USE) is True
        finally:
            await connection.close()

    async def test_a_certificate_signed_by_another_ca_is_refused(
        self, tls_postgres: RunningPostgres, tmp_path: Path
    ) -> None:
        stranger = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(stranger))
        settings = _settings(tls_postgres, database_sslrootcert=stranger)
        url, tls = settings.service_database_url, settings.database_tls

        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            await connect_raw(url, tls)
        engine = create_engine(url, pool_size=1, tls=tls)
        try:
            with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()

    async def test_require_encrypts_without_checking_the_certificate(
        self, tls_postgres: RunningPostgres
    ) -> None:
        tls = DatabaseTLS(mode="require")

        connection = await connect_raw(tls_postgres.url.replace("127.0.0.1", "127.1"), tls)
        try:
            assert await connection.fetchval(_SSL_IN_USE) is True
        finally:
            await connection.close()


class TestPasswordFile:
    async def test_the_password_comes_from_the_file_instead_of_the_url(
        self, tls_postgres: RunningPostgres, tmp_path: Path
    ) -> None:
        role, password = f"r_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
        admin_tls = _settings(tls_postgres).database_tls
        admin = await connect_raw(tls_postgres.url, admin_tls)
        try:
            await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        finally:
            await admin.close()
        secret = tmp_path / "password"
        secret.write_text(f"{password}\n")
        as_role = tls_postgres.url.replace("postgres@", f"{role}:not-the-password@", 1)

        settings = _settings(tls_postgres, database_url=as_role, database_password_file=secret)
        engine = create_engine(settings.service_database_url, pool_size=1, tls=admin_tls)
        try:
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT current_user")) == role
        finally:
            await engine.dispose()
        without_file = _settings(tls_postgres, database_url=as_role)
        with pytest.raises(asyncpg.InvalidPasswordError):
            await connect_raw(without_file.service_database_url, admin_tls)

    def test_an_unreadable_password_file_stops_the_settings(
        self, tls_postgres: RunningPostgres, tmp_path: Path
    ) -> None:
        with pytest.raises(ValueError, match="cannot read the secret file"):
            _settings(tls_postgres, database_password_file=tmp_path / "missing")
