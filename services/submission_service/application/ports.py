"""Plain records the application layer passes around (read from or written to storage)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from submission_service.domain.assessments import JobStatus
from submission_service.domain.identity import Identity


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One stored answer (a row of `assessment_responses`)."""

    id: UUID
    identity: Identity
    question_id: str
    module_slug: str
    learning_outcome_id: str | None
    content_id: str | None
    answer_text: str
    answer_metadata: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    locked: bool = False


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A rubric score of a response (a row of `assessment_scores`)."""

    id: UUID
    response_id: UUID
    score_data: dict[str, Any]
    model_id: str
    prompt_version: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScoringJob:
    """An asynchronous rubric-scoring job (a row of `scoring_jobs`)."""

    id: UUID
    job_type: str
    status: JobStatus
    response_id: UUID
    assessment_id: UUID | None
    request_id: UUID
    error: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """An attempt at an assessment definition by one identity."""

    id: UUID
    definition_id: str
    identity: Identity
    status: str
    created_at: datetime
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver a webhook payload."""

    attempt: int
    attempted_at: datetime
    succeeded: bool
    http_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A payload to deliver to one webhook, with every attempt made so far."""

    id: UUID
    webhook_id: UUID
    url: str
    secret: str | None  # None: the stored secret does not decrypt with the configured keys
    event: str
    payload: dict[str, Any]
    status: str
    attempt_count: int = 0
    attempts: list[DeliveryAttempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A registered callback URL of an assessment."""

    id: UUID
    assessment_id: UUID
    url: str
    created_at: datetime
    deliveries: list[WebhookDelivery] = field(default_factory=list)
