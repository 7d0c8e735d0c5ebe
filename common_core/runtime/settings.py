"""The typed settings base every service's `config.py` extends.

Environment variables carry no service prefix: `KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`,
`TOPIC_PREFIX`, `LOG_LEVEL`, `HTTP_HOST`, `HTTP_PORT`, plus each service's own names.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from common_core.runtime.logging import DEFAULT_REPEAT_INTERVAL_SECONDS
from common_core.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name, validate_prefix

SERVER_DEFAULT_DATABASE = "postgres"
MIN_SECRET_BYTES = 32
"""The shortest shared secret production mode accepts (HS256 wants at least its hash's size)."""


class ServiceSettings(BaseSettings):
    """Settings shared by every service."""

    # Empty variables count as unset, so compose files can pass `${VAR:-}` through safely; a
    # validation error never repeats the values it was given (secrets among them).
    model_config = SettingsConfigDict(
        extra="ignore",
        case_sensitive=False,
        frozen=True,
        env_ignore_empty=True,
        hide_input_in_errors=True,
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    service_database_name: str = "postgres"
    database_pool_size: int = Field(default=10, ge=1)
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

    @field_validator("topic_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        return validate_prefix(value)

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
        """The HS256 secret of AUTH_JWT_SECRET or AUTH_JWT_SECRET_FILE (surrounding whitespace
        stripped), or None."""
        if self.auth_jwt_secret is not None:
            return self.auth_jwt_secret.get_secret_value()
        if self.auth_jwt_secret_file is None:
            return None
        try:
            return self.auth_jwt_secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"AUTH_JWT_SECRET_FILE cannot be read: {exc.strerror}") from exc

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
        """DATABASE_URL as given when it names a database; else the service's own database on it."""
        url = make_url(self.database_url)
        if url.database and url.database != SERVER_DEFAULT_DATABASE:
            return self.database_url
        return url.set(database=self.service_database_name).render_as_string(hide_password=False)

    def topic(self, topic: Topic) -> str:
        """Full name of a logical topic under the configured prefix."""
        return topic_name(topic, self.topic_prefix)
