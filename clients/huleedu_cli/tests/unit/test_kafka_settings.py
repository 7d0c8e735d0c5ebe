"""The CLI reads the services' Kafka security variables from its environment."""

from __future__ import annotations

import pytest

from huleedu_cli.errors import EXIT_USAGE, InputError
from huleedu_cli.kafka_client import kafka_security_from_environment


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE"):
        monkeypatch.delenv(name, raising=False)


def test_sasl_variables_become_the_clients_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "teacher")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw-123")

    kwargs = kafka_security_from_environment().client_kwargs()

    assert kwargs["security_protocol"] == "SASL_PLAINTEXT"
    assert kwargs["sasl_plain_username"] == "teacher"


def test_an_unusable_combination_is_a_usage_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw-123")
    monkeypatch.delenv("KAFKA_SASL_USERNAME", raising=False)

    with pytest.raises(InputError) as caught:
        kafka_security_from_environment()

    assert caught.value.exit_code == EXIT_USAGE
    assert "KAFKA_SASL_USERNAME is required" in caught.value.message
    assert "pw-123" not in caught.value.message
