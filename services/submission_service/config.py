"""Typed settings of the submission service (environment variables, no prefix)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from common_core.events.llm import LLMProviderName
from common_core.limits import MAX_REFERENCE_PASSAGES
from common_core.runtime.settings import MIN_SECRET_BYTES, ServiceSettings

SERVICE_NAME = "submission_service"
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me"  # noqa: S105 - documented dev default
# base64url of b"dev-only-insecure-webhook-key-00": used only while JWT_SECRET is the dev default.
DEV_WEBHOOK_SECRET_KEY = "ZGV2LW9ubHktaW5zZWN1cmUtd2ViaG9vay1rZXktMDA="  # noqa: S105
DEFAULT_CONTENT_DIR = Path(__file__).resolve().parent / "content"


class Settings(ServiceSettings):
    """Settings of the submission service; see README.md for each variable."""

    # A validation error never repeats the values it was given (secrets and keys among them).
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    service_database_name: str = "huleedu_submission"
    http_port: int = Field(default=8003, ge=1, le=65535)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "huleedu"
    jwt_audience: str = "huleedu-submission"
    jwt_leeway_seconds: int = Field(default=30, ge=0)

    # Above what the largest schema-valid body can take on the wire (100,000 characters of
    # answer text as 12-byte surrogate-pair escapes, plus 16 KiB of metadata likewise), so a
    # request the OpenAPI document accepts is never refused for its size.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    list_limit_max: int = Field(default=500, ge=1)

    content_dir: Path = DEFAULT_CONTENT_DIR

    rubric_llm_provider: LLMProviderName | None = None
    rubric_llm_model: str | None = None
    rubric_llm_temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    rubric_prompt_language: str = "en"
    # Reference passages retrieved (full-text search) for an essay's rag request.
    rag_top_passages: int = Field(default=4, ge=1, le=MAX_REFERENCE_PASSAGES)

    webhook_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=300.0, gt=0)
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Comma-separated Fernet keys: the first encrypts, every one decrypts (key rotation).
    webhook_secret_keys: SecretStr | None = None

    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)

    # Answer texts are emptied this long after their scoring finished (scores, statuses and
    # audit rows stay); 0 purges them as soon as it finishes. See docs/operations.md.
    answer_text_retention_days: float = Field(default=365.0, ge=0)
    retention_purge_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_purge_batch_size: int = Field(default=500, ge=1)  # answers per purge transaction
    consumer_max_batch_size: int = Field(default=100, ge=1)

    @field_validator("webhook_allowlist", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        if isinstance(value, list):
            return [str(h).strip().lower() for h in value if str(h).strip()]
        return value

    @field_validator("webhook_secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        keys = _split_keys(value)
        if not keys:
            raise ValueError("WEBHOOK_SECRET_KEYS holds no key")
        for number, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                # The message names the entry, never its value.
                raise ValueError(
                    f"WEBHOOK_SECRET_KEYS entry {number} is not a Fernet key "
                    "(32 url-safe base64-encoded bytes)"
                ) from None
        return value

    @model_validator(mode="after")
    def _webhook_keys_outside_development(self) -> Settings:
        # A published key protects nothing: only a development setup may fall back to it.
        if self.webhook_secret_keys is None and not self.uses_dev_jwt_secret:
            raise ValueError(
                "WEBHOOK_SECRET_KEYS must be set when JWT_SECRET is set "
                "(comma-separated Fernet keys; see the submission service's README)"
            )
        return self

    def production_problems(self) -> list[str]:
        """The base's checks, plus the development JWT secret and webhook key, and a JWT secret
        shorter than MIN_SECRET_BYTES."""
        problems = super().production_problems()
        if self.uses_dev_jwt_secret:
            problems.append("JWT_SECRET is the development default")
        elif len(self.jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            problems.append(f"JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes")
        if self.webhook_secret_keys is None:
            problems.append("WEBHOOK_SECRET_KEYS is unset (the development key would be used)")
        return problems

    @property
    def uses_dev_jwt_secret(self) -> bool:
        """True when JWT_SECRET was left at the insecure development default."""
        return self.jwt_secret.get_secret_value() == DEV_JWT_SECRET

    @property
    def uses_dev_webhook_secret_key(self) -> bool:
        """True when webhook secrets are encrypted with the published development key."""
        return self.webhook_secret_keys is None and self.uses_dev_jwt_secret

    def webhook_secret_key_ring(self) -> list[str]:
        """The Fernet keys of WEBHOOK_SECRET_KEYS, newest first.

        Unset, the development key: validation allows that only while JWT_SECRET is also the
        development default; a deployment that sets JWT_SECRET without WEBHOOK_SECRET_KEYS
        fails validation, so the service refuses to start."""
        if self.webhook_secret_keys is None:
            return [DEV_WEBHOOK_SECRET_KEY]
        return _split_keys(self.webhook_secret_keys)


def _split_keys(value: SecretStr) -> list[str]:
    return [key.strip() for key in value.get_secret_value().split(",") if key.strip()]
