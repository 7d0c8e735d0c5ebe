"""Submission-side payloads: an answer was completed, an answer was scored."""

from __future__ import annotations

from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common_core.events.llm import RubricScores


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AssessmentResponseCompletedV1(_Contract):
    """A learner completed an answer; scoring has been requested (`scoring_request_id`)."""

    response_id: UUID
    question_id: str = Field(min_length=1)
    module_slug: str = Field(min_length=1)
    learning_outcome_id: str | None = None
    content_id: str | None = None
    user_id: str | None = None
    anonymous_token: UUID | None = None
    completed_at: AwareDatetime
    answer_length: int = Field(ge=0)
    scoring_request_id: UUID

    @model_validator(mode="after")
    def _one_identity(self) -> AssessmentResponseCompletedV1:
        if (self.user_id is None) == (self.anonymous_token is None):
            raise ValueError("exactly one of user_id or anonymous_token must be set")
        return self


class AssessmentScoredV1(_Contract):
    """A completed answer received its rubric score."""

    response_id: UUID
    score_id: UUID
    question_id: str
    module_slug: str
    scores: RubricScores
    overall: float = Field(ge=1, le=5)
    feedback: str
    provider: str
    model_id: str
    prompt_version: str
    scored_at: AwareDatetime
