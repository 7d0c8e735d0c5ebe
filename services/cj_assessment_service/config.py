"""Typed settings of the CJ assessment service (environment variables without prefix)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from cj_assessment_service.domain.pair_planning import DEFAULT_REASK_BAND
from common_core.events.llm import LLMProviderName
from common_core.runtime.settings import ServiceSettings
from common_core.topics import Topic

SERVICE_NAME = "cj_assessment_service"
# Shortest JUDGE_LINK_SECRET accepted.
MIN_SECRET_BYTES = 32


class Settings(ServiceSettings):
    """Settings of one CJ assessment service instance."""

    service_database_name: str = "huleedu_cj"
    http_port: int = Field(default=8003, ge=1, le=65535)
    protects_api: ClassVar[bool] = True
    auth_audience: str = "huleedu-cj"

    completion_threshold_pct: float = Field(default=95.0, gt=0, le=100)
    min_success_rate_threshold: float = Field(default=0.8, ge=0, le=1)
    default_comparisons_per_essay: int = Field(default=10, ge=1)
    max_pairs_per_step: int = Field(default=500, ge=1)
    # Comparisons a batch keeps in flight: the LLM provider's in-flight limit (LLM_MAX_IN_FLIGHT,
    # 32) plus half again, so its queue does not run dry while answers travel back and the next
    # pairs are planned. Fewer outstanding pairs adapt sooner to the answers; more keep the
    # provider busier.
    target_outstanding_comparisons: int = Field(default=48, ge=1)
    # Answers to wait for before a refit plans more pairs (unless nothing is in flight).
    refit_every_answers: int = Field(default=8, ge=1)
    # Adaptive re-asking: the reverse order of a pair is asked only when its first soft verdict
    # was uncertain, the judge's probability within this of 1/2 (hard verdicts: see
    # domain/pair_planning.closed_to_reversal).
    reask_uncertainty_band: float = Field(default=DEFAULT_REASK_BAND, ge=0, le=0.5)
    # The stop rule: the target when a request carries none (None: spend the budget).
    default_target_reliability: float | None = Field(default=0.9, gt=0, lt=1)
    min_comparisons_per_essay_before_stop: float = Field(default=6.0, ge=0)
    # Comparisons per essay between two reliability estimates (each is about 10 fits: a search
    # on the ability variance by its Laplace evidence).
    reliability_check_step: float = Field(default=0.5, gt=0)
    # Shares of a batch's time that reliability checks and planning steps may take: the answers
    # between two of them grow with their measured cost and the batch's answer rate
    # (domain/pacing.py), so a big batch with a fast judge is not re-fitted after every few
    # answers. The steps above are the minimums.
    reliability_check_share: float = Field(default=0.1, gt=0, le=1)
    planning_share: float = Field(default=0.2, gt=0, le=1)
    partial_scoring_grace_seconds: float = Field(default=60.0, ge=0)
    stuck_batch_timeout_seconds: float = Field(default=900.0, gt=0)
    # The same for batches asked in `batch` mode (a provider's batch API): its answers come
    # within the provider's completion window (24 h at OpenAI and Anthropic), all at once, so
    # the monitor waits that window and an hour more before it takes such a batch for stuck.
    stuck_batch_mode_timeout_seconds: float = Field(default=90_000.0, gt=0)
    monitor_interval_seconds: float = Field(default=30.0, gt=0)
    monitor_batch_limit: int = Field(default=1000, ge=1)
    recovery_threshold_pct: float = Field(default=80.0, ge=0, le=100)
    max_retries_per_pair: int = Field(default=2, ge=0)
    # Hedged requests for the straggler tail (README "Hedged requests"): once the whole budget
    # is planned, a pair outstanding longer than max(multiple x the batch's median answer time,
    # floor) is asked a second time; the first answer wins. At most this share of the budget in
    # extra calls per batch, each pair at most once; 0 turns hedging off. The median includes
    # the queueing that the tail no longer has, so twice it is about the 99th percentile of an
    # unqueued answer (lognormal, sigma 0.5): normal answers are rarely hedged.
    hedge_max_share: float = Field(default=0.02, ge=0, le=1)
    hedge_latency_multiple: float = Field(default=2.0, gt=0)
    hedge_min_age_seconds: float = Field(default=3.0, ge=0)
    hedge_check_interval_seconds: float = Field(default=0.5, gt=0)

    default_llm_provider: LLMProviderName | None = None
    default_llm_model: str | None = None
    llm_callback_topic: str | None = None

    essay_set_retention_seconds: float = Field(default=86_400.0, gt=0)
    essay_set_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    essay_set_cleanup_interval_seconds: float = Field(default=300.0, gt=0)
    # Essay texts of a finished batch (COMPLETED, FAILED or CANCELLED) are blanked this long
    # after it finished; its scores, pairs, statistics and audit rows stay. A live batch's texts
    # are never purged. Checked every ESSAY_TEXT_PURGE_INTERVAL_SECONDS, in chunks of
    # ESSAY_TEXT_PURGE_BATCHES batches per transaction.
    essay_text_retention_seconds: float = Field(default=7 * 86_400.0, ge=0)
    essay_text_purge_interval_seconds: float = Field(default=300.0, gt=0)
    essay_text_purge_batches: int = Field(default=10, ge=1)

    # Human judging (README "Human judges"): the key that signs the judges' links (unset: the
    # judging page and the organiser's judge API answer 503) and the public base URL the links
    # start with (unset: this instance's own http://127.0.0.1:<HTTP_PORT>).
    # Human judges: the furthest deadline a batch may wait on its people until.
    human_deadline_max_days: float = Field(default=30.0, gt=0)
    judge_link_secret: SecretStr | None = None
    judge_page_base_url: str | None = None

    callback_batch_size: int = Field(default=500, ge=1)
    callback_fetch_max_wait_ms: int = Field(default=50, ge=0)

    @field_validator("judge_link_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # HMAC-SHA256 keys shorter than its output make links guessable offline.
        if secret is not None and len(secret.get_secret_value().encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"JUDGE_LINK_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return secret

    @property
    def judge_links_base_url(self) -> str:
        """Where the judges' links start (no trailing slash)."""
        return (self.judge_page_base_url or f"http://127.0.0.1:{self.http_port}").rstrip("/")

    @property
    def callback_topic(self) -> str:
        """Where the LLM provider should send comparison results for this service."""
        return self.llm_callback_topic or self.topic(Topic.LLM_COMPARISON_RESULT)
