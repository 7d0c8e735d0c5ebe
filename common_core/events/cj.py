"""Comparative-judgement payloads (docs/contracts.md).

The request model checks structure and the limits of common_core.limits (storable text, maximum
sizes); a request that breaks them is answered with a failed event naming the field. An empty
essay list, duplicate ids or empty texts are semantic errors the CJ service answers with a failed
event too, after storing the request, so they must still decode.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from common_core.errors import ErrorDetail
from common_core.events.llm import LLMConfig
from common_core.limits import (
    MAX_ANCHORS_PER_REQUEST,
    MAX_ESSAYS_PER_REQUEST,
    NO_NUL_SCHEMA,
    STORABLE,
    EssayText,
    Identifier,
    InstructionsText,
    RubricText,
    ShortText,
)


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EssayToProcess(_Contract):
    """One essay of a CJ batch."""

    essay_id: Identifier
    text_content: EssayText


class AnchorEssay(EssayToProcess):
    """An essay with a known grade, used to project grades onto the scale."""

    grade: Annotated[str, Field(min_length=1, max_length=20), STORABLE, NO_NUL_SCHEMA]


LLMConfigOverrides = LLMConfig


class EssaySetReference(_Contract):
    """Essays uploaded to the CJ service beforehand (claim check), named instead of inlined.

    `content_sha256` (optional) is the digest the upload answered; when given, the CJ service
    refuses a set whose stored essays do not match it.
    """

    essay_set_id: UUID
    content_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


MAX_HUMAN_JUDGES = 50


class HumanJudge(_Contract):
    """A person invited to judge a batch's comparisons beside the AI: an id of the organiser's
    choosing (unique in the batch) and the name shown on the judge's page."""

    judge_id: Identifier
    display_name: ShortText


class HumanJudgingRequest(_Contract):
    """Teachers judging beside the AI: who, the share of the batch's comparisons given to them
    (0.1: one in ten), and when the pairs they have not judged are released to the AI."""

    judges: list[HumanJudge] = Field(min_length=1, max_length=MAX_HUMAN_JUDGES)
    share: float = Field(gt=0, le=0.5)
    deadline: AwareDatetime

    @model_validator(mode="after")
    def _unique_judges(self) -> HumanJudgingRequest:
        ids = [judge.judge_id for judge in self.judges]
        if len(set(ids)) != len(ids):
            raise ValueError("judge_id must be unique within judges")
        return self


class CJAssessmentRequestV1(_Contract):
    """Upstream asks for a comparative-judgement ranking of a batch of essays.

    The essays travel inline in `essays_to_process` or, for a batch too large for one Kafka
    message, as an `essay_set` reference to an upload (`POST /api/v1/essay-sets`); exactly one
    of the two. `essay_set` is optional and was added backward compatibly.
    """

    event_name: Literal["cj_assessment.requested"] = "cj_assessment.requested"
    entity_ref: Identifier
    essays_to_process: list[EssayToProcess] = Field(max_length=MAX_ESSAYS_PER_REQUEST)
    language: Annotated[str, Field(min_length=2, max_length=16), STORABLE, NO_NUL_SCHEMA] = "en"
    course_code: ShortText | None = None
    essay_instructions: InstructionsText = ""
    judge_rubric: RubricText | None = None
    llm_config_overrides: LLMConfigOverrides | None = None
    max_comparisons: int | None = Field(default=None, ge=1)
    anchors: list[AnchorEssay] = Field(default_factory=list, max_length=MAX_ANCHORS_PER_REQUEST)
    essay_set: EssaySetReference | None = None
    target_reliability: float | None = Field(default=None, gt=0, lt=1)
    # Optional, added backward compatibly: human judges beside the AI (docs/contracts.md).
    human_judging: HumanJudgingRequest | None = None


class CJCompletionReason(StrEnum):
    """Why a CJ batch finished scoring."""

    STABLE = "STABLE"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    ALL_PAIRS_COMPARED = "ALL_PAIRS_COMPARED"
    FORCED_RECOVERY = "FORCED_RECOVERY"
    INSUFFICIENT_ESSAYS = "INSUFFICIENT_ESSAYS"


class EssayRanking(_Contract):
    """One essay's place on the fitted scale; `rank` 1 is the best."""

    essay_id: str
    rank: int = Field(ge=1)
    score: float
    standard_error: float | None = Field(default=None, ge=0)
    comparisons: int = Field(ge=0)
    wins: int = Field(ge=0)


class JudgeCalibrationBin(_Contract):
    """Verdicts of pairs asked in both orders whose stated probability of their pick lies in
    [`low`, `high`): how many, their mean stated probability, the agreement with the reverse-order
    verdict expected if the judge were calibrated (and its two asks erred independently), and the
    agreement observed. Observed below expected: overconfident at that level."""

    low: float = Field(ge=0.5, le=1)
    high: float = Field(ge=0.5, le=1)
    verdicts: int = Field(ge=0)
    mean_stated: float = Field(ge=0.5, le=1)
    expected_agreement: float = Field(ge=0, le=1)
    observed_agreement: float = Field(ge=0, le=1)


class JudgeFitStatistics(_Contract):
    """One judge's fit to the batch's scale: verdicts, outfit and infit mean squares (1 is a
    judge deciding as the model expects; above, noisier), the infit's standardised value, and
    whether the judge is flagged as misfitting (infit above 1.3 and more than 2 standard
    errors above 1). `kind` is `llm` or `human`; an LLM judge's id is `provider:model`."""

    judge_id: str
    kind: str
    judgements: int = Field(ge=0)
    infit: float = Field(ge=0)
    outfit: float = Field(ge=0)
    infit_z: float
    flagged: bool


class HumanDisagreement(_Contract):
    """A human decision the AI-only fit disagrees with most: the essay the judge chose, the other
    one, the judge and the AI's fitted probability that the chosen essay is the better."""

    chosen_essay_id: str
    other_essay_id: str
    judge_id: str
    ai_probability: float = Field(ge=0, le=1)


class HumanJudgingStatistics(_Contract):
    """Human judges of a batch beside the AI.

    `assigned` comparisons were given to the judges, `judged` answered, `released` not judged by
    the deadline and released. `agreement` is the share of human decisions whose chosen essay
    the AI-only fit (the AI's verdicts alone) scores higher, with its `agreement_low` ..
    `agreement_high` Wilson interval at `agreement_confidence` (None without human or AI
    verdicts); `human_position_bias_logit` the humans' own order effect in the joint fit;
    `judges` every judge's misfit (AI and human), `largest_disagreements` the decisions the AI
    disagrees with most (where the AI orders the pair the other way); `left_out_of_ranking`
    the flagged human judges whose decisions the ranking was fitted without (their misfit is
    still reported).
    """

    judges_invited: int = Field(ge=0)
    assigned: int = Field(ge=0)
    judged: int = Field(ge=0)
    released: int = Field(ge=0)
    agreement: float | None = Field(default=None, ge=0, le=1)
    agreement_low: float | None = Field(default=None, ge=0, le=1)
    agreement_high: float | None = Field(default=None, ge=0, le=1)
    agreement_confidence: float | None = Field(default=None, gt=0, lt=1)
    human_position_bias_logit: float | None = None
    judges: list[JudgeFitStatistics] = Field(default_factory=list)
    largest_disagreements: list[HumanDisagreement] = Field(default_factory=list)
    left_out_of_ranking: list[str] = Field(default_factory=list)


class CJStatistics(_Contract):
    """Reliability and design figures of a fitted batch; None where there is too little data.

    `position_bias_standard_error` (optional, added backward compatibly) is the standard error of
    `position_bias_logit` from the same fit. Also optional and added backward compatibly:
    `posterior_reliability`, the expected squared correlation of the scores with the true
    abilities under an empirical-Bayes fit, which adaptive pairing does not inflate (scale
    separation and split-half reliability are inflated by it); `target_reliability`, the target
    the batch ran with; `stop_rule_reliability`, the name of the statistics field the stop rule
    compared with it (None when no target applied); `not_valid_reliabilities`, the names of
    this object's reliability fields whose figures are not valid for the batch and must not be
    read as its reliability: `scale_separation_reliability` and `split_half_reliability` when
    the batch's pairs were chosen adaptively (adaptive pairing alone spreads the scores: both
    read 0.8-0.9 on verdicts that carry no information; None or empty: every figure is valid);
    `pairs_in_both_orders`, how many pairs were answered in both orders, `order_flip_rate`, the
    share of them whose two verdicts picked the same position (so disagreed about the essays;
    None without such pairs), and `judge_calibration`, the judge's calibration checked against
    the reverse-order verdicts of those pairs that carry probabilities in both orders (empty
    without any); `soft_verdicts`, how many of the fitted verdicts carried the judge's own
    probability (`probability_essay_a_better`) and so entered the fit as soft outcomes (the rest
    were hard wins).
    """

    scale_separation_reliability: float | None = None
    split_half_reliability: float | None = None
    position_bias_logit: float | None = None
    position_bias_standard_error: float | None = Field(default=None, ge=0)
    comparisons_per_essay: float = Field(default=0.0, ge=0)
    posterior_reliability: float | None = Field(default=None, ge=0, le=1)
    target_reliability: float | None = None
    stop_rule_reliability: str | None = None
    not_valid_reliabilities: list[str] | None = None
    pairs_in_both_orders: int | None = Field(default=None, ge=0)
    order_flip_rate: float | None = Field(default=None, ge=0, le=1)
    judge_calibration: list[JudgeCalibrationBin] | None = None
    soft_verdicts: int | None = Field(default=None, ge=0)
    # Optional, added backward compatibly: human judges beside the AI (None without them).
    human_judging: HumanJudgingStatistics | None = None


class GradeProjection(_Contract):
    """A grade projected from anchor essays, with a probability per grade."""

    essay_id: str
    predicted_grade: str
    grade_probabilities: dict[str, float]
    confidence: float = Field(ge=0, le=1)


class ResourceUsage(_Contract):
    """What a batch consumed."""

    total_comparisons: int = Field(default=0, ge=0)
    completed_comparisons: int = Field(default=0, ge=0)
    failed_comparisons: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    # Optional since v1 (docs/contracts.md), summed over all the batch's answers (errors included):
    # prompt tokens read from / written to the provider's prompt cache (part of prompt_tokens),
    # and the estimated cost in US dollars from the provider service's price table. The cost is
    # null when any answer that used tokens came without a price (an unpriced model, or an
    # answer from before costs were reported): a partial sum would understate it.
    cached_prompt_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    estimated_cost_usd: float | None = Field(default=None, ge=0)
    unpriced_comparisons: int = Field(default=0, ge=0)


class JudgeIdentity(_Contract):
    """Who judged a batch's comparisons: provider, model, prompt version, and how many."""

    provider: str
    model: str
    prompt_version: str | None = None
    comparisons: int = Field(default=0, ge=0)


class SystemMetadata(_Contract):
    """Processing facts attached to CJ outcome events."""

    source_service: str = "cj_assessment_service"
    processed_at: AwareDatetime
    processing_duration_seconds: float = Field(ge=0)
    resource_usage: ResourceUsage = Field(default_factory=ResourceUsage)
    # Optional since v1: the provider(s), model(s) and prompt version(s) behind the verdicts.
    judges: list[JudgeIdentity] = Field(default_factory=list)


class CJAssessmentCompletedV1(_Contract):
    """A CJ batch has been scored."""

    event_name: Literal["cj_assessment.completed"] = "cj_assessment.completed"
    entity_ref: str
    status: Literal["COMPLETED_SUCCESSFULLY"] = "COMPLETED_SUCCESSFULLY"
    cj_assessment_job_id: str
    completion_reason: CJCompletionReason
    rankings: list[EssayRanking]
    statistics: CJStatistics
    grade_projections: list[GradeProjection] | None = None
    system_metadata: SystemMetadata
    # Optional, added backward compatibly: True when the monitor scored the batch after the
    # completion threshold and grace period (reason FORCED_RECOVERY) instead of every answer.
    partial_scoring_triggered: bool = False
    # Optional, added backward compatibly: what the reason alone does not say, in words (e.g.
    # comparisons of human judges released at their deadline).
    completion_detail: str | None = None


class CJAssessmentFailedV1(_Contract):
    """A CJ batch could not be scored; `error_detail` says why."""

    event_name: Literal["cj_assessment.failed"] = "cj_assessment.failed"
    entity_ref: str
    status: Literal["FAILED"] = "FAILED"
    cj_assessment_job_id: str | None = None
    error_detail: ErrorDetail
    system_metadata: SystemMetadata


__all__ = [
    "AnchorEssay",
    "CJAssessmentCompletedV1",
    "CJAssessmentFailedV1",
    "CJAssessmentRequestV1",
    "CJCompletionReason",
    "CJStatistics",
    "EssayRanking",
    "EssaySetReference",
    "EssayToProcess",
    "GradeProjection",
    "HumanDisagreement",
    "HumanJudge",
    "HumanJudgingRequest",
    "HumanJudgingStatistics",
    "JudgeFitStatistics",
    "LLMConfigOverrides",
    "ResourceUsage",
    "SystemMetadata",
]
