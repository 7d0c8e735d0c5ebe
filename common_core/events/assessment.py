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


class EssayStagePartV1(_Contract):
    """One stage's part in an essay's fused score."""

    stage: str  # rule_score, gpt, rag
    status: str  # completed, failed, skipped
    score: float | None = Field(default=None, ge=1, le=5)
    weight: float = Field(ge=0, le=1)  # its weight in the fusion (0 when it gave no score)


class EssayFusionV1(_Contract):
    """An essay answer's fused score and the stage scores it combines."""

    overall: float = Field(ge=1, le=5)
    parts: list[EssayStagePartV1] = Field(default_factory=list, max_length=8)
    disagreement: bool = False  # gpt and rag differ by more than one point
    degraded: bool = False  # a stage was skipped or failed; its weight went to the others
    citations: list[str] = Field(default_factory=list, max_length=8)  # passages rag relied on


class AssessmentScoredV1(_Contract):
    """A completed answer received its rubric score (for an assessment essay: the fused score,
    with `stage = "fusion"` and its parts in `fusion`)."""

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
    stage: str | None = None  # "fusion" for an assessment essay; None: one rubric score
    fusion: EssayFusionV1 | None = None
