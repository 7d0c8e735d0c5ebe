"""LLM provider payloads (docs/contracts.md): comparison and rubric requests and their results."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common_core.errors import ErrorDetail
from common_core.limits import (
    MAX_REFERENCE_PASSAGES,
    AnswerText,
    CodeText,
    EssayText,
    FeedbackText,
    Identifier,
    InstructionsText,
    PassageText,
    RubricJson,
    RubricText,
    ShortText,
    StorableJson,
    TopicName,
)


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LLMProviderName(StrEnum):
    """Providers the LLM provider service can call."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    HEURISTIC = "heuristic"


class LLMMode(StrEnum):
    """How the provider service calls the model: one call now, or through the provider's batch
    API (half the price, answers within the provider's completion window)."""

    SYNC = "sync"
    BATCH = "batch"


class LLMConfig(_Contract):
    """Per-request model settings; None means the provider service's default."""

    provider: LLMProviderName | None = None
    model: Identifier | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32000)
    mode: LLMMode | None = None


class ComparisonWinner(StrEnum):
    """Which essay of a pair the judge preferred."""

    ESSAY_A = "essay_a"
    ESSAY_B = "essay_b"


class JudgeKind(StrEnum):
    """Who gave a comparison verdict: a language model (through the LLM provider service) or a
    human judge (through the CJ service's judging page)."""

    LLM = "llm"
    HUMAN = "human"


class ComparisonEssay(_Contract):
    """An essay as shown to the judge."""

    essay_id: Identifier
    text_content: EssayText


class TokenUsage(_Contract):
    """Tokens a provider call consumed."""

    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    # Optional since v1 (docs/contracts.md). `prompt_tokens` is all input tokens; these say how many
    # of them were read from the provider's prompt cache and how many were written to it.
    cached_prompt_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    # US dollars from the provider service's dated price table; None when the model has no price
    # (never 0 for an unknown price) or the producer predates the field.
    estimated_cost_usd: float | None = Field(default=None, ge=0)


class LLMComparisonRequestV1(_Contract):
    """Ask the provider which of two essays is better; the answer goes to `callback_topic`."""

    request_id: UUID
    essay_a: ComparisonEssay
    essay_b: ComparisonEssay
    essay_instructions: InstructionsText = ""
    judge_rubric: RubricText | None = None
    language: CodeText = "en"
    llm_config: LLMConfig = Field(default_factory=LLMConfig)
    callback_topic: TopicName
    request_metadata: StorableJson = Field(default_factory=dict)
    # Added backward compatibly: the Kafka key the answer is published with; absent, the
    # request's own message key. Lets a sender spread requests over partitions (key each by its
    # request id) while the answers of a group stay on one partition (callback_key = group id).
    callback_key: Identifier | None = None


class _ProviderAnswer(_Contract):
    request_id: UUID
    request_metadata: StorableJson = Field(default_factory=dict)
    error_detail: ErrorDetail | None = None
    provider: ShortText
    model: ShortText
    prompt_sha256: ShortText | None = None
    prompt_version: ShortText | None = None
    latency_ms: int = Field(default=0, ge=0)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    injection_suspected: bool = False


class LLMComparisonResultV1(_ProviderAnswer):
    """The judge's verdict on a pair, or an `error_detail`: exactly one of the two.

    `probability_essay_a_better` (optional, added backward compatibly) is the judge's own
    probability that essay A, the essay shown first, is the better one: from the verdict token's
    log-probabilities where the provider returns them, from the offline judge's calibrated
    margin, and None where the judge gives no real probability (the stated 1-5 `confidence` is
    not one). Only a verdict carries it.

    `judge_kind` and `judge_id` (optional, added backward compatibly) say who judged: absent or
    `llm`, the model named by `provider` and `model`; `human`, the human judge `judge_id` of
    the batch, whose verdict the CJ service's judging page publishes on the same topic (with
    `provider` `human`, no tokens and no probability).
    """

    winner: ComparisonWinner | None = None
    justification: FeedbackText | None = None
    confidence: float | None = Field(default=None, ge=1, le=5)
    probability_essay_a_better: float | None = Field(default=None, ge=0, le=1)
    judge_kind: JudgeKind | None = None
    judge_id: Identifier | None = None

    @model_validator(mode="after")
    def _exactly_one_outcome(self) -> LLMComparisonResultV1:
        has_verdict = self.winner is not None
        if has_verdict == (self.error_detail is not None):
            raise ValueError("exactly one of winner or error_detail must be set")
        if has_verdict and self.confidence is None:
            raise ValueError("a verdict needs a confidence (1..5)")
        if not has_verdict and self.probability_essay_a_better is not None:
            raise ValueError("probability_essay_a_better belongs to a verdict, not to an error")
        if self.judge_kind == JudgeKind.HUMAN and self.judge_id is None:
            raise ValueError("a human verdict needs its judge_id")
        return self

    @property
    def is_error(self) -> bool:
        """True when the provider could not judge the pair."""
        return self.error_detail is not None


class ReferencePassage(_Contract):
    """A passage of course reference material (course text, key points, exemplar answer)."""

    passage_id: Identifier
    text: PassageText


class LLMRubricRequestV1(_Contract):
    """Ask the provider to score one answer on a rubric."""

    request_id: UUID
    answer_text: AnswerText
    question_text: InstructionsText = ""
    rubric: RubricJson = Field(default_factory=dict)
    language: CodeText = "en"
    llm_config: LLMConfig = Field(default_factory=LLMConfig)
    callback_topic: TopicName
    request_metadata: StorableJson = Field(default_factory=dict)
    # The Kafka key the answer is published with; absent, the request's own message key (as in
    # `LLMComparisonRequestV1`).
    callback_key: Identifier | None = None
    # Retrieval-grounded scoring: the course text to check the answer against (untrusted, like
    # the answer); the result names the ones it used in `citations`. Empty: plain rubric scoring.
    reference_passages: list[ReferencePassage] = Field(
        default_factory=list, max_length=MAX_REFERENCE_PASSAGES
    )


class RubricScores(_Contract):
    """Scores on the four rubric dimensions, each 1..5."""

    relevance: int = Field(ge=1, le=5)
    depth: int = Field(ge=1, le=5)
    clarity: int = Field(ge=1, le=5)
    technical: int = Field(ge=1, le=5)


class LLMRubricResultV1(_ProviderAnswer):
    """Rubric scores for an answer, or an `error_detail`: exactly one of the two."""

    scores: RubricScores | None = None
    overall: float | None = Field(default=None, ge=1, le=5)
    feedback: FeedbackText | None = None
    # The ids of the request's reference passages the score relied on (empty without passages).
    citations: list[Identifier] = Field(default_factory=list, max_length=MAX_REFERENCE_PASSAGES)

    @model_validator(mode="after")
    def _exactly_one_outcome(self) -> LLMRubricResultV1:
        has_scores = self.scores is not None
        if has_scores == (self.error_detail is not None):
            raise ValueError("exactly one of scores or error_detail must be set")
        if has_scores and self.overall is None:
            raise ValueError("scores need an overall score (1..5)")
        return self

    @property
    def is_error(self) -> bool:
        """True when the provider could not score the answer."""
        return self.error_detail is not None
