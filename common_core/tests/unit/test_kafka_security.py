"""Kafka security settings: checked at start-up naming the setting, turned into aiokafka kwargs."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError

from common_core.runtime.kafka_security import KafkaSecuritySettings

SCRAM = {"kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "cj"}
SASL_SSL = {"kafka_security_protocol": "SASL_SSL", **SCRAM}


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SASL_PASSWORD_FILE",
        "KAFKA_SSL_CAFILE",
        "KAFKA_SSL_CERTFILE",
        "KAFKA_SSL_KEYFILE",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _settings(**values: Any) -> KafkaSecuritySettings:
    return KafkaSecuritySettings.model_validate(values)


def _error(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        _settings(**values)
    return str(caught.value)


class TestDefaults:
    def test_plaintext_needs_nothing_and_passes_only_the_protocol(self) -> None:
        assert _settings().kafka_security.client_kwargs() == {"security_protocol": "PLAINTEXT"}

    def test_environment_names_are_the_usual_ones(
        self, monkeypatch: pytest.MonkeyPatch, ca_file: Path
    ) -> None:
        monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
        monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
        monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw-123")
        monkeypatch.setenv("KAFKA_SSL_CAFILE", str(ca_file))

        security = KafkaSecuritySettings().kafka_security

        assert security.protocol == "SASL_SSL"
        assert security.sasl_mechanism == "SCRAM-SHA-256"
        assert security.ssl_cafile == ca_file


class TestClientKwargs:
    def test_sasl_ssl_gives_mechanism_credentials_and_a_verifying_context(
        self, ca_file: Path
    ) -> None:
        kwargs = _settings(
            **SASL_SSL, kafka_sasl_password="pw-123", kafka_ssl_cafile=str(ca_file)
        ).kafka_security.client_kwargs()

        context = kwargs.pop("ssl_context")
        assert kwargs == {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "cj",
            "sasl_plain_password": "pw-123",
        }
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname

    def test_sasl_plaintext_has_no_tls_context(self) -> None:
        kwargs = _settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
        ).kafka_security.client_kwargs()

        assert "ssl_context" not in kwargs
        assert kwargs["sasl_mechanism"] == "PLAIN"

    def test_mutual_tls_loads_the_client_certificate(self, tmp_path: Path) -> None:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        client = ca.issue_cert("client.example")
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
        client.private_key_pem.write_to_path(str(tmp_path / "client.key"))

        kwargs = _settings(
            kafka_security_protocol="SSL",
            kafka_ssl_cafile=str(tmp_path / "ca.pem"),
            kafka_ssl_certfile=str(tmp_path / "client.pem"),
            kafka_ssl_keyfile=str(tmp_path / "client.key"),
        ).kafka_security.client_kwargs()

        assert kwargs["security_protocol"] == "SSL"
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
        assert "sasl_mechanism" not in kwargs

    def test_the_password_file_is_read_without_its_line_end(self, tmp_path: Path) -> None:
        (tmp_path / "password").write_text("from-a-file\n")

        security = _settings(
            **SCRAM,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_password_file=str(tmp_path / "password"),
        ).kafka_security

        assert security.client_kwargs()["sasl_plain_password"] == "from-a-file"


class TestSecretsStaySecret:
    def test_the_password_is_not_in_the_settings_repr(self) -> None:
        settings = _settings(
            **SCRAM, kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_password="pw-123"
        )

        assert "pw-123" not in repr(settings)
        assert "pw-123" not in repr(settings.kafka_security)

    def test_a_rejected_configuration_does_not_repeat_the_password(self) -> None:
        message = _error(kafka_security_protocol="SASL_SSL", kafka_sasl_password="pw-123")

        assert "pw-123" not in message


class TestStartUpChecksNameTheSetting:
    @pytest.mark.parametrize(
        ("missing", "named"),
        [
            ("kafka_sasl_mechanism", "KAFKA_SASL_MECHANISM is required"),
            ("kafka_sasl_username", "KAFKA_SASL_USERNAME is required"),
            ("kafka_sasl_password", "KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required"),
        ],
    )
    def test_sasl_without_one_of_its_settings(self, missing: str, named: str) -> None:
        values = {
            **SCRAM,
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_password": "p",
        }
        del values[missing]

        assert named in _error(**values)

    def test_an_unknown_protocol(self) -> None:
        assert "kafka_security_protocol" in _error(kafka_security_protocol="TLS")

    def test_an_unknown_mechanism(self) -> None:
        assert "kafka_sasl_mechanism" in _error(
            kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="GSSAPI"
        )

    def test_sasl_settings_with_a_protocol_without_sasl(self) -> None:
        message = _error(kafka_sasl_username="cj", kafka_sasl_password="p")

        assert "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD set but" in message
        assert "KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL" in message

    def test_a_ca_file_with_a_protocol_without_tls(self, ca_file: Path) -> None:
        message = _error(kafka_ssl_cafile=str(ca_file))

        assert "KAFKA_SSL_CAFILE set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS" in (
            message
        )

    def test_a_ca_file_that_cannot_be_read(self, tmp_path: Path) -> None:
        missing = tmp_path / "nowhere.pem"

        message = _error(kafka_security_protocol="SSL", kafka_ssl_cafile=str(missing))

        assert f"KAFKA_SSL_CAFILE={missing}: file not readable" in message

    def test_a_ca_file_without_a_certificate(self, tmp_path: Path) -> None:
        (tmp_path / "ca.pem").write_text("not a certificate\n")

        message = _error(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "ca.pem"))

        assert "KAFKA_SSL_CAFILE" in message
        assert "no PEM CA certificate" in message

    def test_a_key_without_its_certificate(self, tmp_path: Path) -> None:
        (tmp_path / "client.key").write_text("key")

        message = _error(
            kafka_security_protocol="SSL", kafka_ssl_keyfile=str(tmp_path / "client.key")
        )

        assert "KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE" in message

    def test_a_certificate_that_does_not_match_its_key(self, tmp_path: Path) -> None:
        ca = trustme.CA()
        ca.issue_cert("one.example").cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
        ca.issue_cert("two.example").private_key_pem.write_to_path(str(tmp_path / "k.pem"))

        message = _error(
            kafka_security_protocol="SSL",
            kafka_ssl_certfile=str(tmp_path / "c.pem"),
            kafka_ssl_keyfile=str(tmp_path / "k.pem"),
        )

        assert "KAFKA_SSL_CERTFILE" in message
        assert "not a PEM certificate with its unencrypted private key" in message

    def test_an_encrypted_key_is_refused_instead_of_prompting(self, tmp_path: Path) -> None:
        issued = trustme.CA().issue_cert("client.example")
        issued.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
        (tmp_path / "k.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"key-password"),
            )
        )

        message = _error(
            kafka_security_protocol="SSL",
            kafka_ssl_certfile=str(tmp_path / "c.pem"),
            kafka_ssl_keyfile=str(tmp_path / "k.pem"),
        )

        assert "not a PEM certificate with its unencrypted private key" in message

    def test_both_a_password_and_a_password_file(self, tmp_path: Path) -> None:
        (tmp_path / "password").write_text("p")

        message = _error(
            **SASL_SSL,
            kafka_sasl_password="p",
            kafka_sasl_password_file=str(tmp_path / "password"),
        )

        assert "set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both" in message

    def test_a_password_file_that_cannot_be_read(self, tmp_path: Path) -> None:
        message = _error(**SASL_SSL, kafka_sasl_password_file=str(tmp_path / "absent"))

        assert "KAFKA_SASL_PASSWORD_FILE=" in message
        assert "file not readable" in message

    def test_an_empty_password_file(self, tmp_path: Path) -> None:
        (tmp_path / "password").write_text("\n")

        message = _error(**SASL_SSL, kafka_sasl_password_file=str(tmp_path / "password"))

        assert "KAFKA_SASL_PASSWORD_FILE=" in message
        assert "empty" in message
