"""Typed settings of the CJ assessment service (environment variables without prefix)."""

from __future__ import annotations

from pydantic import Field

from common_core.events.llm import LLMProviderName
from common_core.runtime.settings import ServiceSettings
from common_core.topics import Topic

SERVICE_NAME = "cj_assessment_service"


class Settings(ServiceSettings):
    """Settings of one CJ assessment service instance."""

    service_database_name: str = "huleedu_cj"
    http_port: int = Field(default=8003, ge=1, le=65535)

    completion_threshold_pct: float = Field(default=95.0, gt=0, le=100)
    min_success_rate_threshold: float = Field(default=0.8, ge=0, le=1)
    default_comparisons_per_essay: int = Field(default=10, ge=1)
    max_pairs_per_wave: int = Field(default=500, ge=1)
    partial_scoring_grace_seconds: float = Field(default=60.0, ge=0)
    stuck_batch_timeout_seconds: float = Field(default=900.0, gt=0)
    monitor_interval_seconds: float = Field(default=30.0, gt=0)
    monitor_batch_limit: int = Field(default=1000, ge=1)
    recovery_threshold_pct: float = Field(default=80.0, ge=0, le=100)
    max_retries_per_pair: int = Field(default=2, ge=0)
    stability_threshold: float = Field(default=0.05, gt=0)

    default_llm_provider: LLMProviderName | None = None
    default_llm_model: str | None = None
    llm_callback_topic: str | None = None

    essay_set_retention_seconds: float = Field(default=86_400.0, gt=0)
    essay_set_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    essay_set_cleanup_interval_seconds: float = Field(default=300.0, gt=0)

    callback_batch_size: int = Field(default=500, ge=1)
    callback_fetch_max_wait_ms: int = Field(default=50, ge=0)

    @property
    def callback_topic(self) -> str:
        """Where the LLM provider should send comparison results for this service."""
        return self.llm_callback_topic or self.topic(Topic.LLM_COMPARISON_RESULT)
