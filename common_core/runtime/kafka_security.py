"""How every Kafka client of the project connects: security protocol, SASL and TLS, in one place.

`KafkaSecuritySettings` reads the usual environment names (`KAFKA_SECURITY_PROTOCOL`,
`KAFKA_SASL_MECHANISM`, `KAFKA_SASL_USERNAME`, `KAFKA_SASL_PASSWORD` or
`KAFKA_SASL_PASSWORD_FILE`, `KAFKA_SSL_CAFILE`, `KAFKA_SSL_CERTFILE`, `KAFKA_SSL_KEYFILE`) and
checks them at start-up, naming the setting that is wrong. `KafkaSecurity` is what clients are
given; `client_kwargs()` turns it into the keyword arguments of every aiokafka client (producer,
consumers, admin), so no client builds its own. PLAINTEXT is the default.

`check_kafka_access` connects once before anything else does and turns a refused certificate or
refused credentials into a `KafkaAccessError` that names the setting: aiokafka's own clients log
such failures and retry the next bootstrap server, which would hide the cause.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common_core.runtime.secret_files import read_secret_file

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

_SASL_PROTOCOLS = {"SASL_PLAINTEXT", "SASL_SSL"}
_TLS_PROTOCOLS = {"SSL", "SASL_SSL"}
# An encrypted client key would make OpenSSL prompt on the terminal; with this it fails instead.
_NO_KEY_PASSWORD = ""


class KafkaAccessError(RuntimeError):
    """The broker refused this client (certificate, credentials or an ACL); `setting` names
    what to fix. A start-up failure, not something to retry."""

    def __init__(self, setting: str, cause: str) -> None:
        super().__init__(f"{setting}: {cause}")
        self.setting = setting
        self.cause = cause


def _readable(setting: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{setting}={path}: file not readable ({exc.strerror})") from None


class KafkaSecurity(BaseModel):
    """A checked security configuration for Kafka clients (PLAINTEXT unless told otherwise)."""

    # A rejected configuration's error never repeats its input: it holds the password.
    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        self._check_sasl()
        self._check_tls()
        return self

    def _check_sasl(self) -> None:
        protocol = f"KAFKA_SECURITY_PROTOCOL={self.protocol}"
        if self.protocol not in _SASL_PROTOCOLS:
            given = [
                name
                for name, value in (
                    ("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
                    ("KAFKA_SASL_USERNAME", self.sasl_username),
                    ("KAFKA_SASL_PASSWORD", self.sasl_password),
                )
                if value is not None
            ]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but {protocol} does not use SASL "
                    "(use SASL_PLAINTEXT or SASL_SSL)"
                )
            return
        if self.sasl_mechanism is None:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM is required with {protocol} "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if not self.sasl_username:
            raise ValueError(f"KAFKA_SASL_USERNAME is required with {protocol}")
        if self.sasl_password is None or not self.sasl_password.get_secret_value():
            raise ValueError(
                f"KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE is required with {protocol}"
            )

    def _check_tls(self) -> None:
        files = (
            ("KAFKA_SSL_CAFILE", self.ssl_cafile),
            ("KAFKA_SSL_CERTFILE", self.ssl_certfile),
            ("KAFKA_SSL_KEYFILE", self.ssl_keyfile),
        )
        if self.protocol not in _TLS_PROTOCOLS:
            given = [name for name, path in files if path is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={self.protocol} does "
                    "not use TLS (use SSL or SASL_SSL)"
                )
            return
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE (mutual TLS)")
        for setting, path in files:
            if path is not None:
                _readable(setting, path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ssl_cafile is not None:
            try:
                context.load_verify_locations(cafile=self.ssl_cafile)
            except (ssl.SSLError, ValueError) as exc:
                raise ValueError(
                    f"KAFKA_SSL_CAFILE={self.ssl_cafile}: no PEM CA certificate in it ({exc})"
                ) from None
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, _NO_KEY_PASSWORD)
            except ssl.SSLError as exc:
                raise ValueError(
                    f"KAFKA_SSL_CERTFILE={self.ssl_certfile}, KAFKA_SSL_KEYFILE="
                    f"{self.ssl_keyfile}: not a PEM certificate with its unencrypted private "
                    f"key ({exc})"
                ) from None

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: `ssl_cafile` (else the system CAs) and the client certificate."""
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile,
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=_NO_KEY_PASSWORD,
        )
        return context

    @property
    def principal_setting(self) -> str:
        """The setting that names who this client is to the broker's ACLs."""
        if self.protocol in _SASL_PROTOCOLS:
            return "KAFKA_SASL_USERNAME"
        if self.ssl_certfile is not None:
            return "KAFKA_SSL_CERTFILE"
        return "KAFKA_SECURITY_PROTOCOL"

    @property
    def principal(self) -> str:
        """Who this client is, for messages (the SASL user, the certificate, or anonymous)."""
        if self.sasl_username:
            return f"user {self.sasl_username!r}"
        if self.ssl_certfile is not None:
            return f"the certificate {self.ssl_certfile}"
        return "an anonymous client"

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (`AIOKafkaProducer`, `AIOKafkaConsumer`,
        `AIOKafkaAdminClient`, `create_conn`)."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in _TLS_PROTOCOLS:
            kwargs["ssl_context"] = self.ssl_context()
        if self.protocol in _SASL_PROTOCOLS:
            assert self.sasl_password is not None  # the validator requires it
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return kwargs


PLAINTEXT = KafkaSecurity()


# How every settings class of the project reads the environment: names without a prefix, any
# case; empty variables count as unset, so compose files can pass `${VAR:-}` through safely; a
# validation error never repeats the values it was given (secrets among them).
ENVIRONMENT_SETTINGS = SettingsConfigDict(
    extra="ignore",
    case_sensitive=False,
    frozen=True,
    env_ignore_empty=True,
    hide_input_in_errors=True,
)


class KafkaSecuritySettings(BaseSettings):
    """The Kafka connection settings every service and the CLI read from the environment."""

    model_config = ENVIRONMENT_SETTINGS

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    @model_validator(mode="after")
    def _valid_kafka_security(self) -> KafkaSecuritySettings:
        self.kafka_security  # noqa: B018 - builds and checks it, raising with the setting's name
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        """The checked security configuration to hand to Kafka clients."""
        password = self.kafka_sasl_password
        if self.kafka_sasl_password_file is not None:
            if password is not None:
                raise ValueError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
            password = SecretStr(
                read_secret_file(self.kafka_sasl_password_file, "KAFKA_SASL_PASSWORD_FILE")
            )
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password,
            ssl_cafile=self.kafka_ssl_cafile,
            ssl_certfile=self.kafka_ssl_certfile,
            ssl_keyfile=self.kafka_ssl_keyfile,
        )


def _addresses(bootstrap_servers: str) -> list[tuple[str, int]]:
    addresses = []
    for item in bootstrap_servers.split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            addresses.append((host.strip("[]"), int(port)))
    return addresses


async def check_kafka_access(
    bootstrap_servers: str, security: KafkaSecurity, *, timeout: float = 10.0
) -> None:
    """Connect to the first bootstrap server that answers and authenticate as the clients will;
    raise `KafkaAccessError` naming the setting when the broker's certificate or the credentials
    are refused. An unreachable broker is left to the clients (they wait for it)."""
    for host, port in _addresses(bootstrap_servers):
        where = f"{host}:{port}"
        try:
            conn = await create_conn(
                host,
                port,
                client_id="huleedu-access-check",
                request_timeout_ms=int(timeout * 1000),
                **security.client_kwargs(),
            )
        except ssl.SSLCertVerificationError as exc:
            raise KafkaAccessError(
                "KAFKA_SSL_CAFILE",
                f"the certificate of the broker at {where} is not trusted "
                f"({exc.verify_message}; CA file: {security.ssl_cafile or 'the system CAs'})",
            ) from None
        except ssl.SSLError as exc:
            raise KafkaAccessError(
                "KAFKA_SECURITY_PROTOCOL",
                f"the TLS handshake with {where} failed ({exc.reason or exc.strerror}) with "
                f"KAFKA_SECURITY_PROTOCOL={security.protocol}",
            ) from None
        except SaslAuthenticationFailed as exc:
            raise KafkaAccessError(
                "KAFKA_SASL_PASSWORD",
                f"the broker at {where} refused the credentials of {security.principal} with "
                f"{security.sasl_mechanism} ({exc.args[0] if exc.args else 'no reason given'})",
            ) from None
        except UnsupportedSaslMechanismError as exc:
            raise KafkaAccessError(
                "KAFKA_SASL_MECHANISM",
                f"the broker at {where} does not accept {security.sasl_mechanism} "
                f"({exc.args[0] if exc.args else 'no reason given'})",
            ) from None
        except (TimeoutError, OSError, KafkaError):
            continue
        conn.close()
        return


@contextlib.contextmanager
def acl_refusals(security: KafkaSecurity, group_id: str) -> Iterator[None]:
    """Turn the broker's refusal of a consumer group or topic (its ACLs) into a
    `KafkaAccessError` naming who was refused: a consumer cannot work around it by retrying."""
    try:
        yield
    except GroupAuthorizationFailedError:
        raise KafkaAccessError(
            security.principal_setting,
            f"{security.principal} may not use the consumer group {group_id}: the broker's ACLs "
            "lack READ (and DESCRIBE) on it",
        ) from None
    except TopicAuthorizationFailedError as exc:
        raise KafkaAccessError(
            security.principal_setting,
            f"{security.principal} may not read the topics of consumer group {group_id} "
            f"({exc}): the broker's ACLs lack READ (and DESCRIBE) on them",
        ) from None
