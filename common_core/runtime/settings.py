"""The typed settings base every service's `config.py` extends.

Environment variables carry no service prefix: `KAFKA_BOOTSTRAP_SERVERS` (and the Kafka security
settings of `kafka_security.py`), `DATABASE_URL`,
`TOPIC_PREFIX`, `LOG_LEVEL`, `HTTP_HOST`, `HTTP_PORT`, plus each service's own names.
`TopicSettings` (the topics' prefix and layout) is its own class so that the CLI's
`huleedu topics` plans with exactly what the services create.

Every secret setting (a `SecretStr` field, such as `JWT_SECRET` or `OPENAI_API_KEY`) can instead
be read from a file named by `<NAME>_FILE` (a mounted secret); setting both is refused. A setting
that declares its own `<name>_file` field (`KAFKA_SASL_PASSWORD_FILE`) reads its file itself.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
)
from sqlalchemy.engine import make_url

from common_core.runtime.database import DatabaseTLS, SslMode
from common_core.runtime.kafka_admin import TopicSpec
from common_core.runtime.kafka_security import ENVIRONMENT_SETTINGS, KafkaSecuritySettings
from common_core.runtime.logging import DEFAULT_REPEAT_INTERVAL_SECONDS
from common_core.runtime.secret_files import read_secret_file
from common_core.topics import (
    DEFAULT_TOPIC_PREFIX,
    Topic,
    TopicClass,
    topic_class,
    topic_name,
    validate_prefix,
)

SERVER_DEFAULT_DATABASE = "postgres"
DAY_MS = 24 * 3600 * 1000
MIN_SECRET_BYTES = 32
"""The shortest shared secret production mode accepts (HS256 wants at least its hash's size)."""


class TopicsMode(StrEnum):
    """What a service does about its topics at start-up."""

    CREATE = "create"
    """Create the missing ones (needs the right to create topics)."""
    VERIFY = "verify"
    """Only check them: readiness fails, naming them, while any is missing or too small."""


class TopicSettings(BaseSettings):
    """The topics' prefix and layout: partitions, replication factor and retention by class
    (requests, callbacks, completions, dead letters). A class's partitions or replication
    factor left unset is the general `TOPIC_PARTITIONS` / `TOPIC_REPLICATION_FACTOR`."""

    model_config = ENVIRONMENT_SETTINGS

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual sources, plus `<NAME>_FILE` for secret settings after the environment."""
        secrets = SecretFilesSource(settings_cls)
        return init_settings, env_settings, secrets, dotenv_settings, file_secret_settings

    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    kafka_topics_mode: TopicsMode = TopicsMode.CREATE
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    topic_partitions_requests: int | None = Field(default=None, ge=1)
    topic_partitions_callbacks: int | None = Field(default=None, ge=1)
    topic_partitions_completions: int | None = Field(default=None, ge=1)
    topic_partitions_dead_letters: int | None = Field(default=None, ge=1)
    topic_replication_factor_requests: int | None = Field(default=None, ge=1)
    topic_replication_factor_callbacks: int | None = Field(default=None, ge=1)
    topic_replication_factor_completions: int | None = Field(default=None, ge=1)
    topic_replication_factor_dead_letters: int | None = Field(default=None, ge=1)
    # `retention.ms` of created topics; -1 keeps messages forever. Dead letters wait for a
    # person to look at them, so they are kept longer.
    topic_retention_ms_requests: int = Field(default=7 * DAY_MS, ge=-1)
    topic_retention_ms_callbacks: int = Field(default=7 * DAY_MS, ge=-1)
    topic_retention_ms_completions: int = Field(default=7 * DAY_MS, ge=-1)
    topic_retention_ms_dead_letters: int = Field(default=28 * DAY_MS, ge=-1)

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return validate_prefix(value)

    def topic(self, topic: Topic) -> str:
        """Full name of a logical topic under the configured prefix."""
        return topic_name(topic, self.topic_prefix)

    def topic_spec(self, name: str) -> TopicSpec:
        """How a topic is created: its class's settings; a name outside the registry (a
        custom callback topic) gets the general partitions and replication factor and the
        broker's retention."""
        kind = topic_class(name, self.topic_prefix)
        if kind is None:
            return TopicSpec(name, self.topic_partitions, self.topic_replication_factor)
        partitions, replication, retention = self._class_layout(kind)
        return TopicSpec(
            name,
            partitions=partitions or self.topic_partitions,
            replication_factor=replication or self.topic_replication_factor,
            retention_ms=retention,
            topic_class=kind,
        )

    def _class_layout(self, kind: TopicClass) -> tuple[int | None, int | None, int]:
        return {
            TopicClass.REQUESTS: (
                self.topic_partitions_requests,
                self.topic_replication_factor_requests,
                self.topic_retention_ms_requests,
            ),
            TopicClass.CALLBACKS: (
                self.topic_partitions_callbacks,
                self.topic_replication_factor_callbacks,
                self.topic_retention_ms_callbacks,
            ),
            TopicClass.COMPLETIONS: (
                self.topic_partitions_completions,
                self.topic_replication_factor_completions,
                self.topic_retention_ms_completions,
            ),
            TopicClass.DEAD_LETTERS: (
                self.topic_partitions_dead_letters,
                self.topic_replication_factor_dead_letters,
                self.topic_retention_ms_dead_letters,
            ),
        }[kind]

    def topic_specs(self, names: Iterable[str]) -> list[TopicSpec]:
        """The specs of `names`, each once, sorted by name."""
        return [self.topic_spec(name) for name in sorted(set(names))]


class ServiceSettings(TopicSettings, KafkaSecuritySettings):
    """Settings shared by every service (the Kafka connection's from `KafkaSecuritySettings`)."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    service_database_name: str = "postgres"
    database_pool_size: int = Field(default=10, ge=1)
    # TLS to PostgreSQL, the same for the engine and the raw connections (LISTEN, creating the
    # database): see common_core.runtime.database.DatabaseTLS.
    database_sslmode: SslMode = "prefer"
    database_sslrootcert: Path | None = None
    database_sslcert: Path | None = None
    database_sslkey: Path | None = None
    # A file holding the database password (a mounted secret); it replaces DATABASE_URL's own.
    database_password_file: Path | None = None
    # Create the database and apply migrations at start-up. Off, the service runs with a role
    # that has only DML rights and an operator runs `python -m <service> migrate` beforehand.
    database_migrate_on_start: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    # A log message repeated within this many seconds is written once with `repeats=N`.
    log_repeat_interval_seconds: float = Field(default=DEFAULT_REPEAT_INTERVAL_SECONDS, ge=0)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    instance_id: str | None = None
    # Times a consumer hands a message to its handler when the handler fails because of the
    # message's data (not an outage: those are retried for as long as it takes) before the
    # message goes to `<topic>.dlq`.
    consumer_max_attempts: int = Field(default=5, ge=1)
    # Published outbox rows are deleted this long after publication (they may hold learner
    # text: a comparison request carries both essays). Unpublished rows are never deleted.
    outbox_retention_hours: float = Field(default=168.0, gt=0)
    # Worker threads for CPU-heavy work (fits, estimates, planning), and so how many such
    # computations run at once; the event loop never runs them (common_core/runtime/compute.py).
    compute_workers: int = Field(default=2, ge=1, le=64)

    # `production` refuses to start on any placeholder or short secret, or without API auth.
    environment: Literal["development", "production"] = "development"
    # Serve /metrics and the health endpoints on this port only (unset: on HTTP_PORT with the API).
    ops_http_port: int | None = Field(default=None, ge=1, le=65535)

    # Bearer tokens on the `/api` routes (common_core/runtime/http_auth.py). Unset, AUTH_MODE is
    # `required` once a key source is set and `disabled` otherwise (refused in production).
    auth_mode: Literal["required", "disabled"] | None = None
    auth_jwks_url: str | None = None
    auth_jwks_file: Path | None = None
    auth_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    auth_jwt_secret: SecretStr | None = None
    auth_jwt_secret_file: Path | None = None
    auth_issuer: str = "huleedu"
    auth_audience: str = "huleedu"
    auth_leeway_seconds: int = Field(default=30, ge=0)

    protects_api: ClassVar[bool] = False
    """True for a service whose `/api` routes take AUTH_* bearer tokens (production needs them)."""

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        url = make_url(value)
        if url.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
            url = url.set(drivername="postgresql+asyncpg")
        if url.drivername != "postgresql+asyncpg":
            raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql+asyncpg://...)")
        return url.render_as_string(hide_password=False)

    @model_validator(mode="after")
    def _database_credentials(self) -> ServiceSettings:
        if (self.database_sslcert is None) != (self.database_sslkey is None):
            raise ValueError("DATABASE_SSLCERT and DATABASE_SSLKEY are set together or not at all")
        if self.database_sslrootcert and not self.database_sslmode.startswith("verify-"):
            raise ValueError(
                "DATABASE_SSLROOTCERT is only used with DATABASE_SSLMODE=verify-ca or verify-full"
            )
        if self.database_password_file is not None:
            read_secret_file(
                self.database_password_file, "DATABASE_PASSWORD_FILE"
            )  # unreadable: fail at start, clearly
        return self

    @property
    def database_tls(self) -> DatabaseTLS:
        """How every connection to PostgreSQL uses TLS."""
        return DatabaseTLS(
            mode=self.database_sslmode,
            root_cert=self.database_sslrootcert,
            cert=self.database_sslcert,
            key=self.database_sslkey,
        )

    @model_validator(mode="after")
    def _distinct_ports(self) -> ServiceSettings:
        if self.ops_http_port == self.http_port:
            raise ValueError("OPS_HTTP_PORT must differ from HTTP_PORT (or be unset)")
        return self

    @model_validator(mode="after")
    def _auth_configuration(self) -> ServiceSettings:
        if self.auth_jwt_secret is not None and self.auth_jwt_secret_file is not None:
            raise ValueError("set AUTH_JWT_SECRET or AUTH_JWT_SECRET_FILE, not both")
        if self.auth_mode == "required" and not self.has_auth_keys:
            raise ValueError(
                "AUTH_MODE=required needs AUTH_JWKS_URL, AUTH_JWKS_FILE or AUTH_JWT_SECRET(_FILE)"
            )
        if self.environment == "production":
            problems = self.production_problems()
            if problems:
                raise ValueError("ENVIRONMENT=production refuses to start: " + "; ".join(problems))
        return self

    @property
    def has_auth_keys(self) -> bool:
        """True when a JWKS or an HS256 secret is configured for bearer tokens."""
        return any(
            source is not None
            for source in (
                self.auth_jwks_url,
                self.auth_jwks_file,
                self.auth_jwt_secret,
                self.auth_jwt_secret_file,
            )
        )

    @property
    def api_auth_enabled(self) -> bool:
        """Whether the `/api` routes require a bearer token (AUTH_MODE, or any key source set)."""
        if self.auth_mode is not None:
            return self.auth_mode == "required"
        return self.has_auth_keys

    def auth_secret(self) -> str | None:
        """The HS256 secret of AUTH_JWT_SECRET or AUTH_JWT_SECRET_FILE, or None."""
        if self.auth_jwt_secret is not None:
            return self.auth_jwt_secret.get_secret_value()
        if self.auth_jwt_secret_file is None:
            return None
        return read_secret_file(self.auth_jwt_secret_file, "AUTH_JWT_SECRET_FILE")

    def production_problems(self) -> list[str]:
        """What production mode refuses in these settings, each naming its setting; services
        with secrets of their own extend it."""
        problems: list[str] = []
        secret = self.auth_secret()
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append(f"AUTH_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes")
        if self.protects_api and not self.api_auth_enabled:
            problems.append(
                "API authentication is disabled (set AUTH_JWKS_URL, AUTH_JWKS_FILE or "
                "AUTH_JWT_SECRET, and leave AUTH_MODE unset or `required`)"
            )
        return problems

    @property
    def service_database_url(self) -> str:
        """DATABASE_URL as given when it names a database; else the service's own database on it.

        With DATABASE_PASSWORD_FILE, the password is the file's content (`read_secret_file`).
        """
        url = make_url(self.database_url)
        if not url.database or url.database == SERVER_DEFAULT_DATABASE:
            url = url.set(database=self.service_database_name)
        if self.database_password_file is not None:
            url = url.set(
                password=read_secret_file(self.database_password_file, "DATABASE_PASSWORD_FILE")
            )
        return url.render_as_string(hide_password=False)


class SecretFilesSource(PydanticBaseSettingsSource):
    """`<NAME>_FILE=/path` sets the secret setting NAME (a `SecretStr` field) from that file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: `__call__` reads every secret field at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        environ = {name.upper(): value for name, value in os.environ.items() if value}
        values: dict[str, Any] = {}
        fields = self.settings_cls.model_fields
        for name, field in fields.items():
            path = environ.get(f"{name.upper()}_FILE")
            if path is None or not _is_secret(field) or f"{name}_file" in fields:
                continue
            if name.upper() in environ:
                raise ValueError(f"set {name.upper()} or {name.upper()}_FILE, not both")
            values[name] = read_secret_file(Path(path), f"{name.upper()}_FILE")
        return values


def _is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)
