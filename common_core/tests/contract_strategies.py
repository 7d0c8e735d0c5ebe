"""Hypothesis strategies producing valid instances of every contract model."""

from __future__ import annotations

from datetime import UTC
from typing import Literal

from hypothesis import strategies as st
from pydantic import BaseModel

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events import (
    AnchorEssay,
    AssessmentResponseCompletedV1,
    AssessmentScoredV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    CJCompletionReason,
    CJStatistics,
    ComparisonEssay,
    ComparisonWinner,
    EssayFusionV1,
    EssayRanking,
    EssaySetReference,
    EssayStagePartV1,
    EssayToProcess,
    GradeProjection,
    HumanDisagreement,
    HumanJudge,
    HumanJudgingRequest,
    HumanJudgingStatistics,
    JudgeFitStatistics,
    JudgeKind,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
    LLMMode,
    LLMProviderName,
    LLMRubricRequestV1,
    LLMRubricResultV1,
    ReferencePassage,
    ResourceUsage,
    RubricScores,
    SystemMetadata,
    TokenUsage,
)
from common_core.events.cj import JudgeIdentity

# Text PostgreSQL can store (common_core.limits): no NUL, no lone surrogate.
_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
storable = st.characters(exclude_characters="\x00", exclude_categories=_SURROGATES)
ids = st.text(storable, min_size=1, max_size=40)
texts = st.text(storable, max_size=200)
topic_names = st.from_regex(r"\A[a-zA-Z0-9._-]{1,60}\Z")
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e6, max_value=1e6)
non_negative = st.floats(min_value=0, max_value=1e6, allow_nan=False)
counts = st.integers(min_value=0, max_value=10_000)
aware_datetimes = st.datetimes(timezones=st.just(UTC))
metadata = st.dictionaries(
    st.text(storable, max_size=10),
    st.one_of(st.integers(), st.text(storable, max_size=20)),
    max_size=3,
)

llm_configs = st.builds(
    LLMConfig,
    provider=st.none() | st.sampled_from(LLMProviderName),
    model=st.none() | st.text(storable, min_size=1, max_size=30),
    temperature=st.none() | st.floats(min_value=0, max_value=2),
    max_tokens=st.none() | st.integers(min_value=1, max_value=32000),
    mode=st.none() | st.sampled_from(LLMMode),
)
essays = st.builds(EssayToProcess, essay_id=ids, text_content=texts)
anchors = st.builds(
    AnchorEssay, essay_id=ids, text_content=texts, grade=st.text(storable, min_size=1, max_size=5)
)
error_details = st.builds(
    ErrorDetail,
    code=st.sampled_from(ErrorCode),
    message=st.text(storable, min_size=1, max_size=100),
    timestamp=aware_datetimes,
    service=ids,
    operation=ids,
    details=metadata,
)
usage = st.builds(
    TokenUsage,
    prompt_tokens=counts,
    completion_tokens=counts,
    cached_prompt_tokens=counts,
    cache_write_tokens=counts,
    estimated_cost_usd=st.none() | non_negative,
)
system_metadata = st.builds(
    SystemMetadata,
    processed_at=aware_datetimes,
    processing_duration_seconds=non_negative,
    resource_usage=st.builds(
        ResourceUsage,
        total_comparisons=counts,
        completed_comparisons=counts,
        failed_comparisons=counts,
        prompt_tokens=counts,
        completion_tokens=counts,
        cached_prompt_tokens=counts,
        cache_write_tokens=counts,
        estimated_cost_usd=st.none() | non_negative,
        unpriced_comparisons=counts,
    ),
    judges=st.lists(
        st.builds(
            JudgeIdentity,
            provider=ids,
            model=ids,
            prompt_version=st.none() | ids,
            comparisons=counts,
        ),
        max_size=3,
    ),
)
rubric_scores = st.builds(
    RubricScores, **{d: st.integers(1, 5) for d in ("relevance", "depth", "clarity", "technical")}
)
overall = st.floats(min_value=1, max_value=5)
_answer_common = {
    "request_metadata": metadata,
    "provider": ids,
    "model": ids,
    "prompt_sha256": st.none() | st.text(min_size=64, max_size=64, alphabet="0123456789abcdef"),
    "latency_ms": counts,
    "usage": usage,
}

STRATEGIES: dict[type[BaseModel], st.SearchStrategy[BaseModel]] = {
    CJAssessmentRequestV1: st.builds(
        CJAssessmentRequestV1,
        entity_ref=ids,
        essays_to_process=st.lists(essays, max_size=5),
        language=st.sampled_from(["en", "sv", "en-GB"]),
        course_code=st.none() | ids,
        essay_instructions=texts,
        judge_rubric=st.none() | texts,
        llm_config_overrides=st.none() | llm_configs,
        max_comparisons=st.none() | st.integers(min_value=1, max_value=10_000),
        anchors=st.lists(anchors, max_size=3),
        essay_set=st.none()
        | st.builds(
            EssaySetReference,
            essay_set_id=st.uuids(),
            content_sha256=st.none() | st.from_regex(r"\A[0-9a-f]{64}\Z"),
        ),
        human_judging=st.none()
        | st.builds(
            HumanJudgingRequest,
            judges=st.lists(
                st.builds(HumanJudge, judge_id=ids, display_name=ids),
                min_size=1,
                max_size=3,
                unique_by=lambda judge: judge.judge_id,
            ),
            share=st.floats(min_value=0.01, max_value=0.5),
            deadline=aware_datetimes,
        ),
    ),
    CJAssessmentCompletedV1: st.builds(
        CJAssessmentCompletedV1,
        entity_ref=ids,
        cj_assessment_job_id=ids,
        completion_reason=st.sampled_from(CJCompletionReason),
        rankings=st.lists(
            st.builds(
                EssayRanking,
                essay_id=ids,
                rank=st.integers(min_value=1, max_value=1000),
                score=finite,
                standard_error=st.none() | non_negative,
                comparisons=counts,
                wins=counts,
            ),
            max_size=5,
        ),
        statistics=st.builds(
            CJStatistics,
            scale_separation_reliability=st.none() | finite,
            split_half_reliability=st.none() | finite,
            position_bias_logit=st.none() | finite,
            position_bias_standard_error=st.none() | non_negative,
            comparisons_per_essay=non_negative,
            human_judging=st.none()
            | st.builds(
                HumanJudgingStatistics,
                judges_invited=counts,
                assigned=counts,
                judged=counts,
                released=counts,
                agreement=st.none() | st.floats(0, 1),
                judges=st.lists(
                    st.builds(
                        JudgeFitStatistics,
                        judge_id=ids,
                        kind=st.sampled_from(["llm", "human"]),
                        judgements=counts,
                        infit=non_negative,
                        outfit=non_negative,
                        infit_z=finite,
                        flagged=st.booleans(),
                    ),
                    max_size=3,
                ),
                largest_disagreements=st.lists(
                    st.builds(
                        HumanDisagreement,
                        chosen_essay_id=ids,
                        other_essay_id=ids,
                        judge_id=ids,
                        ai_probability=st.floats(0, 1),
                    ),
                    max_size=2,
                ),
                left_out_of_ranking=st.lists(ids, max_size=2),
            ),
        ),
        grade_projections=st.none()
        | st.lists(
            st.builds(
                GradeProjection,
                essay_id=ids,
                predicted_grade=ids,
                grade_probabilities=st.dictionaries(ids, st.floats(0, 1), max_size=4),
                confidence=st.floats(0, 1),
            ),
            max_size=3,
        ),
        system_metadata=system_metadata,
        completion_detail=st.none() | texts,
    ),
    CJAssessmentFailedV1: st.builds(
        CJAssessmentFailedV1,
        entity_ref=ids,
        cj_assessment_job_id=st.none() | ids,
        error_detail=error_details,
        system_metadata=system_metadata,
    ),
    LLMComparisonRequestV1: st.builds(
        LLMComparisonRequestV1,
        request_id=st.uuids(),
        essay_a=st.builds(ComparisonEssay, essay_id=ids, text_content=texts),
        essay_b=st.builds(ComparisonEssay, essay_id=ids, text_content=texts),
        essay_instructions=texts,
        judge_rubric=st.none() | texts,
        llm_config=llm_configs,
        callback_topic=topic_names,
        request_metadata=metadata,
    ),
    LLMComparisonResultV1: st.one_of(
        st.builds(
            LLMComparisonResultV1,
            request_id=st.uuids(),
            winner=st.sampled_from(ComparisonWinner),
            justification=texts,
            confidence=st.floats(min_value=1, max_value=5),
            injection_suspected=st.booleans(),
            judge_kind=st.none() | st.just(JudgeKind.LLM),
            **_answer_common,
        ),
        st.builds(
            LLMComparisonResultV1,
            request_id=st.uuids(),
            winner=st.sampled_from(ComparisonWinner),
            confidence=st.just(3.0),
            judge_kind=st.just(JudgeKind.HUMAN),
            judge_id=ids,
            **_answer_common,
        ),
        st.builds(
            LLMComparisonResultV1,
            request_id=st.uuids(),
            error_detail=error_details,
            **_answer_common,
        ),
    ),
    LLMRubricRequestV1: st.builds(
        LLMRubricRequestV1,
        request_id=st.uuids(),
        answer_text=texts,
        question_text=texts,
        rubric=st.dictionaries(ids, texts, max_size=4),
        llm_config=llm_configs,
        callback_topic=topic_names,
        request_metadata=metadata,
        reference_passages=st.lists(
            st.builds(ReferencePassage, passage_id=ids, text=texts), max_size=3
        ),
    ),
    LLMRubricResultV1: st.one_of(
        st.builds(
            LLMRubricResultV1,
            request_id=st.uuids(),
            scores=rubric_scores,
            overall=overall,
            feedback=texts,
            citations=st.lists(ids, max_size=3),
            **_answer_common,
        ),
        st.builds(
            LLMRubricResultV1, request_id=st.uuids(), error_detail=error_details, **_answer_common
        ),
    ),
    AssessmentResponseCompletedV1: st.builds(
        AssessmentResponseCompletedV1,
        response_id=st.uuids(),
        question_id=ids,
        module_slug=ids,
        learning_outcome_id=st.none() | ids,
        content_id=st.none() | ids,
        user_id=ids,
        anonymous_token=st.none(),
        completed_at=aware_datetimes,
        answer_length=counts,
        scoring_request_id=st.uuids(),
    )
    | st.builds(
        AssessmentResponseCompletedV1,
        response_id=st.uuids(),
        question_id=ids,
        module_slug=ids,
        user_id=st.none(),
        anonymous_token=st.uuids(),
        completed_at=aware_datetimes,
        answer_length=counts,
        scoring_request_id=st.uuids(),
    ),
    AssessmentScoredV1: st.builds(
        AssessmentScoredV1,
        response_id=st.uuids(),
        score_id=st.uuids(),
        question_id=ids,
        module_slug=ids,
        scores=rubric_scores,
        overall=overall,
        feedback=texts,
        provider=ids,
        model_id=ids,
        prompt_version=ids,
        scored_at=aware_datetimes,
        stage=st.none() | st.just("fusion"),
        fusion=st.none()
        | st.builds(
            EssayFusionV1,
            overall=overall,
            parts=st.lists(
                st.builds(
                    EssayStagePartV1,
                    stage=st.sampled_from(["rule_score", "gpt", "rag"]),
                    status=st.sampled_from(["completed", "failed", "skipped"]),
                    score=st.none() | overall,
                    weight=st.floats(min_value=0, max_value=1),
                ),
                max_size=3,
            ),
            disagreement=st.booleans(),
            degraded=st.booleans(),
            citations=st.lists(ids, max_size=3),
        ),
    ),
}
