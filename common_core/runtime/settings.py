"""The typed settings base every service's `config.py` extends.

Environment variables carry no service prefix: `KAFKA_BOOTSTRAP_SERVERS` (and the Kafka security
settings of `kafka_security.py`), `DATABASE_URL`,
`TOPIC_PREFIX`, `LOG_LEVEL`, `HTTP_HOST`, `HTTP_PORT`, plus each service's own names.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url

from common_core.runtime.kafka_security import KafkaSecuritySettings
from common_core.runtime.logging import DEFAULT_REPEAT_INTERVAL_SECONDS
from common_core.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name, validate_prefix

SERVER_DEFAULT_DATABASE = "postgres"


class ServiceSettings(KafkaSecuritySettings):
    """Settings shared by every service (the Kafka connection's from `KafkaSecuritySettings`)."""

    # Empty variables count as unset, so compose files can pass `${VAR:-}` through safely.
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, frozen=True, env_ignore_empty=True
    )

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
