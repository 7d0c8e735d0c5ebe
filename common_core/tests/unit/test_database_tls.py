"""DATABASE_SSLMODE and friends become one `ssl` argument for asyncpg; the runtime role's GRANTs
are built from the tables and sequences found."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from common_core.runtime.database import DatabaseTLS
from common_core.runtime.grants import dml_grant_statements
from common_core.runtime.settings import ServiceSettings


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


class TestSslArgument:
    def test_prefer_leaves_asyncpg_its_default(self) -> None:
        assert DatabaseTLS().connect_args() == {}

    def test_disable_turns_tls_off(self) -> None:
        assert DatabaseTLS(mode="disable").connect_args() == {"ssl": False}

    def test_require_encrypts_without_verifying(self) -> None:
        context = DatabaseTLS(mode="require").asyncpg_ssl()
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_NONE
        assert not context.check_hostname

    def test_verify_ca_checks_the_signer_only(self, ca_file: Path) -> None:
        context = DatabaseTLS(mode="verify-ca", root_cert=ca_file).asyncpg_ssl()
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert not context.check_hostname

    def test_verify_full_checks_the_signer_and_the_host_name(self, ca_file: Path) -> None:
        context = DatabaseTLS(mode="verify-full", root_cert=ca_file).asyncpg_ssl()
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert len(context.get_ca_certs()) == 1  # only the given CA, not the system's store


class TestSettings:
    def test_the_settings_build_the_tls_of_every_connection(self, ca_file: Path) -> None:
        settings = ServiceSettings(database_sslmode="verify-full", database_sslrootcert=ca_file)
        assert settings.database_tls == DatabaseTLS(mode="verify-full", root_cert=ca_file)

    def test_a_client_certificate_needs_its_key(self, tmp_path: Path) -> None:
        with pytest.raises(ValidationError, match="DATABASE_SSLCERT and DATABASE_SSLKEY"):
            ServiceSettings(database_sslmode="require", database_sslcert=tmp_path / "c.pem")

    def test_a_root_certificate_without_verification_is_refused(self, ca_file: Path) -> None:
        with pytest.raises(ValidationError, match="only used with DATABASE_SSLMODE=verify-ca"):
            ServiceSettings(database_sslmode="require", database_sslrootcert=ca_file)

    def test_the_password_file_replaces_the_urls_password(self, tmp_path: Path) -> None:
        secret = tmp_path / "password"
        secret.write_text("from-the-file\n")
        settings = ServiceSettings(
            database_url="postgresql+asyncpg://svc:in-the-url@db.example:5432/postgres",
            service_database_name="svc_db",
            database_password_file=secret,
        )
        expected = "postgresql+asyncpg://svc:from-the-file@db.example:5432/svc_db"
        assert settings.service_database_url == expected

    def test_an_empty_password_file_is_refused(self, tmp_path: Path) -> None:
        secret = tmp_path / "password"
        secret.write_text("\n")
        with pytest.raises(ValidationError, match="is empty"):
            ServiceSettings(database_password_file=secret)


class TestGrants:
    def test_the_runtime_role_gets_dml_on_the_tables_and_use_of_the_sequences(self) -> None:
        statements = dml_grant_statements(
            "cj", "public", "cj_app", ["batches", 'odd"name'], ["batches_id_seq"]
        )
        assert statements == [
            'GRANT CONNECT ON DATABASE "cj" TO "cj_app";',
            'GRANT USAGE ON SCHEMA "public" TO "cj_app";',
            'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "public"."batches", '
            '"public"."odd""name" TO "cj_app";',
            'GRANT USAGE, SELECT ON SEQUENCE "public"."batches_id_seq" TO "cj_app";',
        ]
