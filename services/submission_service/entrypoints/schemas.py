"""Typed HTTP request and response models (they generate the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from submission_service.domain.completion import normalise_completed_at

_ID = Field(min_length=1, max_length=200)


def _nul_path(value: object, path: str = "") -> str | None:
    """Where a NUL character hides in a JSON value (PostgreSQL text and JSONB refuse it)."""
    if isinstance(value, str):
        return path or "<root>" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_path(item, here)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: object) -> object:
        where = _nul_path(data)
        if where is not None:
            raise ValueError(f"NUL characters are not allowed (in {where})")
        return data


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Reply):
    """Every failure: a specific code, a message and, for bad input, the field."""

    code: str
    message: str
    field: str | None = None


class CreateResponseIn(_Request):
    """A new answer. `completed_at` may be stored but a POST never triggers scoring."""

    question_id: str = _ID
    module_slug: str = _ID
    answer_text: str = Field(default="", max_length=100_000)
    learning_outcome_id: str | None = Field(default=None, max_length=200)
    content_id: str | None = Field(default=None, max_length=200)
    answer_metadata: dict[str, Any] = Field(default_factory=dict)
    completed_at: datetime | None = None

    @field_validator("completed_at", mode="before")
    @classmethod
    def _completed_at(cls, value: object) -> datetime | None:
        return normalise_completed_at(value)


class UpdateResponseIn(_Request):
    """A partial update. Only `completed_at` set to a timestamp triggers scoring; empty,
    `null` and the string "null" clear it without triggering."""

    answer_text: str = Field(default="", max_length=100_000)
    learning_outcome_id: str | None = Field(default=None, max_length=200)
    content_id: str | None = Field(default=None, max_length=200)
    answer_metadata: dict[str, Any] = Field(default_factory=dict)
    completed_at: datetime | None = None

    @field_validator("completed_at", mode="before")
    @classmethod
    def _completed_at(cls, value: object) -> datetime | None:
        return normalise_completed_at(value)


class ScoreOut(_Reply):
    """A rubric score of an answer."""

    score_id: UUID
    score_data: dict[str, Any]
    model_id: str
    prompt_version: str
    created_at: datetime


class ResponseOut(_Reply):
    """An answer as stored (never with scores in create/update answers)."""

    id: UUID
    user_id: str | None
    anonymous_token: UUID | None
    question_id: str
    module_slug: str
    learning_outcome_id: str | None
    content_id: str | None
    answer_text: str
    answer_metadata: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    locked: bool


class UpdatedResponseOut(ResponseOut):
    """An updated answer and whether the update requested scoring (scored later)."""

    scoring_requested: bool


class ResponseWithScoresOut(ResponseOut):
    """An answer with its scores, newest first."""

    scores: list[ScoreOut]


class ResponseListOut(_Reply):
    """The caller's answers, newest first."""

    responses: list[ResponseWithScoresOut]


class ResponseListQuery(_Request):
    """Filters of the listing (unknown parameters, e.g. cache busters, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    module_slug: str | None = Field(default=None, min_length=1, max_length=200)
    question_id: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=100, ge=1, le=500)


class ClaimIn(_Request):
    """Which anonymous token to claim (else the X-Anonymous-Token header is used)."""

    anonymous_token: UUID | None = None


class ClaimOut(_Reply):
    """How many answers moved to the user and how many stayed (question already answered)."""

    claimed: int
    skipped: int


class OptionOut(_Reply):
    """A selectable option."""

    id: str
    text: str


class QuestionOut(_Reply):
    """A question as shown to learners (no correct option)."""

    id: str
    type: str
    prompt: str
    weight: float
    options: list[OptionOut]
    learning_outcome_id: str | None


class ModuleOut(_Reply):
    """A module of a definition."""

    slug: str
    title: str
    questions: list[QuestionOut]


class DefinitionOut(_Reply):
    """A shipped assessment definition."""

    id: str
    title: str
    description: str
    modules: list[ModuleOut]


class DefinitionListOut(_Reply):
    """Every shipped definition."""

    definitions: list[DefinitionOut]


class StartAssessmentIn(_Request):
    """Start an attempt at a shipped definition."""

    definition_id: str = _ID


class AssessmentOut(_Reply):
    """A started attempt; its id is the `{id}` of submit, status and webhook."""

    assessment_id: UUID
    definition_id: str
    status: str
    created_at: datetime


class SubmitIn(_Request):
    """Optional submit body; it is part of the idempotency fingerprint."""

    client_reference: str | None = Field(default=None, max_length=200)


class SubmitHeaders(BaseModel):
    """The idempotency key every submit needs."""

    idempotency_key: str = Field(min_length=1, max_length=200)


class RuleResultOut(_Reply):
    """An inline-scored question (theoretical or profile)."""

    module_slug: str
    question_id: str
    score_type: str
    status: str
    score: float | None
    max_score: float
    detail: dict[str, Any]


class EssayJobOut(_Reply):
    """A queued essay scoring job."""

    job_id: UUID
    module_slug: str
    question_id: str
    status: str


class QuestionRefOut(_Reply):
    """A question by module and id."""

    module_slug: str
    question_id: str


class SubmitOut(_Reply):
    """The submission's immediate answer: rule results now, essay jobs queued."""

    assessment_id: UUID
    definition_id: str
    status: str
    submitted_at: datetime
    degraded: bool
    rule_results: list[RuleResultOut]
    essay_jobs: list[EssayJobOut]
    missing: list[QuestionRefOut]


class StageOut(_Reply):
    """One stage's progress and its weight in the overall progress."""

    name: str
    weight: float
    status: str
    done: int
    total: int


class JobOut(_Reply):
    """A scoring job's state (`queued → in_progress → completed | failed`)."""

    job_id: UUID
    module_slug: str
    question_id: str
    status: str
    error: dict[str, Any] | None


class DeliveryAttemptOut(_Reply):
    """One webhook delivery attempt."""

    attempt: int
    attempted_at: datetime
    succeeded: bool
    http_status: int | None
    error: str | None


class DeliveryOut(_Reply):
    """A webhook delivery and its attempts."""

    delivery_id: UUID
    event: str
    status: str
    attempts: list[DeliveryAttemptOut]


class WebhookStatusOut(_Reply):
    """A registered webhook with its deliveries."""

    webhook_id: UUID
    url: str
    deliveries: list[DeliveryOut]


class StatusOut(_Reply):
    """Where an assessment stands."""

    assessment_id: UUID
    definition_id: str
    status: str
    created_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    progress: float
    stages: list[StageOut]
    jobs: list[JobOut]
    result: dict[str, Any] | None
    webhooks: list[WebhookStatusOut]


class WebhookIn(_Request):
    """A callback URL for the assessment's completion."""

    url: str = Field(min_length=1, max_length=2000)


class WebhookOut(_Reply):
    """A registered webhook; the secret signs every delivery and is shown only here."""

    webhook_id: UUID
    url: str
    secret: str
    signature_header: str


class HealthOut(_Reply):
    """Liveness."""

    status: str


class ReadinessOut(_Reply):
    """Readiness of each dependency."""

    status: str
    checks: dict[str, str]
