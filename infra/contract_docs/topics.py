"""Who produces and consumes each topic, what its message key is, and one example per outcome.

The payload models and topic names come from `common_core`; what they do not say (the parties and
the key, which live in each service's code) is written down here and checked by the contract
tests: every registered topic must have an entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events import (
    AssessmentResponseCompletedV1,
    AssessmentScoredV1,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    CJCompletionReason,
    CJStatistics,
    ComparisonEssay,
    ComparisonWinner,
    EssayRanking,
    EssaySetReference,
    EssayToProcess,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
    LLMProviderName,
    LLMRubricRequestV1,
    LLMRubricResultV1,
    ReferencePassage,
    ResourceUsage,
    RubricScores,
    SystemMetadata,
    TokenUsage,
)
from common_core.topics import Topic, topic_name

UPSTREAM = "upstream"
"""The batch orchestrator outside this repository (the `huleedu` CLI plays its part)."""

CJ = "cj_assessment_service"
LLM = "llm_provider_service"
SUBMISSION = "submission_service"


@dataclass(frozen=True, slots=True)
class Example:
    """One example message of a topic: its key and payload."""

    name: str
    summary: str
    key: str
    payload: BaseModel


@dataclass(frozen=True, slots=True)
class TopicParties:
    """A topic's producer, its consumers in this repository, and its message key."""

    producer: str
    consumers: tuple[str, ...]
    key: str
    examples: tuple[Example, ...]
    note: str = ""


def example_id(name: str) -> UUID:
    """A fixed UUID per example name, so the documents are the same on every run."""
    return uuid5(NAMESPACE_URL, f"https://huleedu.example/contracts/{name}")


EXAMPLE_TIME = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_BATCH_ID = example_id("cj-batch")
_RESPONSE_ID = example_id("response")
_CORRELATION_ID = example_id("correlation")


def _error(code: ErrorCode, message: str, service: str, operation: str) -> ErrorDetail:
    return ErrorDetail(
        code=code,
        message=message,
        correlation_id=_CORRELATION_ID,
        timestamp=EXAMPLE_TIME,
        service=service,
        operation=operation,
        retryable=code in {ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT},
    )


def _system_metadata() -> SystemMetadata:
    return SystemMetadata(
        processed_at=EXAMPLE_TIME,
        processing_duration_seconds=12.5,
        resource_usage=ResourceUsage(
            total_comparisons=3,
            completed_comparisons=3,
            prompt_tokens=5400,
            completion_tokens=240,
            estimated_cost_usd=0.0012,
        ),
    )


_ESSAYS = (
    EssayToProcess(essay_id="e1", text_content="Cities should invest in cycling because ..."),
    EssayToProcess(essay_id="e2", text_content="Public transport is the better investment ..."),
    EssayToProcess(essay_id="e3", text_content="Cars are here to stay, so roads ..."),
)
_RUBRIC_REQUEST_ID = example_id("rubric-request")
_COMPARISON_REQUEST_ID = example_id("comparison-request")
_CALLBACK_METADATA = {"batch_id": str(_BATCH_ID), "pair_id": str(example_id("pair"))}
_RUBRIC_METADATA = {"response_id": str(_RESPONSE_ID), "stage": "gpt"}

PARTIES: dict[Topic, TopicParties] = {
    Topic.CJ_ASSESSMENT_REQUESTED: TopicParties(
        producer=UPSTREAM,
        consumers=(CJ,),
        key="`entity_ref`, the upstream batch id",
        examples=(
            Example(
                "inline",
                "A small batch with its essays inline",
                "bos-batch-42",
                CJAssessmentRequestV1(
                    entity_ref="bos-batch-42",
                    essays_to_process=list(_ESSAYS),
                    course_code="ENG5",
                    essay_instructions="Argue for the transport investment your city needs most.",
                    judge_rubric="A better essay argues clearly and supports its claims.",
                    llm_config_overrides=LLMConfig(provider=LLMProviderName.HEURISTIC),
                    max_comparisons=200,
                    target_reliability=0.9,
                ),
            ),
            Example(
                "essay_set",
                "A large batch naming an essay set uploaded beforehand (claim check)",
                "bos-batch-43",
                CJAssessmentRequestV1(
                    entity_ref="bos-batch-43",
                    essays_to_process=[],
                    essay_set=EssaySetReference(essay_set_id=example_id("essay-set")),
                ),
            ),
        ),
    ),
    Topic.CJ_ASSESSMENT_COMPLETED: TopicParties(
        producer=CJ,
        consumers=(UPSTREAM,),
        key="`entity_ref` of the request",
        examples=(
            Example(
                "completed",
                "A batch scored after every pair was compared",
                "bos-batch-42",
                CJAssessmentCompletedV1(
                    entity_ref="bos-batch-42",
                    cj_assessment_job_id=str(_BATCH_ID),
                    completion_reason=CJCompletionReason.ALL_PAIRS_COMPARED,
                    rankings=[
                        EssayRanking(
                            essay_id="e2",
                            rank=1,
                            score=0.9,
                            standard_error=0.8,
                            comparisons=2,
                            wins=2,
                        ),
                        EssayRanking(
                            essay_id="e1",
                            rank=2,
                            score=0.0,
                            standard_error=0.7,
                            comparisons=2,
                            wins=1,
                        ),
                        EssayRanking(
                            essay_id="e3",
                            rank=3,
                            score=-0.9,
                            standard_error=0.8,
                            comparisons=2,
                            wins=0,
                        ),
                    ],
                    statistics=CJStatistics(
                        scale_separation_reliability=0.41,
                        split_half_reliability=None,
                        position_bias_logit=0.05,
                        comparisons_per_essay=2.0,
                    ),
                    system_metadata=_system_metadata(),
                ),
            ),
        ),
    ),
    Topic.CJ_ASSESSMENT_FAILED: TopicParties(
        producer=CJ,
        consumers=(UPSTREAM,),
        key="`entity_ref` of the request",
        examples=(
            Example(
                "duplicate_ids",
                "A request with duplicate essay ids",
                "bos-batch-44",
                CJAssessmentFailedV1(
                    entity_ref="bos-batch-44",
                    cj_assessment_job_id=str(example_id("cj-batch-failed")),
                    error_detail=_error(
                        ErrorCode.VALIDATION,
                        "duplicate essay_id: e1",
                        CJ,
                        "validate_request",
                    ),
                    system_metadata=_system_metadata(),
                ),
            ),
        ),
    ),
    Topic.LLM_COMPARISON_REQUESTED: TopicParties(
        producer=CJ,
        consumers=(LLM,),
        key=(
            "the `request_id` (a batch's requests spread over every partition; `callback_key` "
            "is the CJ batch id)"
        ),
        examples=(
            Example(
                "comparison",
                "One pair of a batch",
                str(_COMPARISON_REQUEST_ID),
                LLMComparisonRequestV1(
                    request_id=_COMPARISON_REQUEST_ID,
                    essay_a=ComparisonEssay(essay_id="e1", text_content=_ESSAYS[0].text_content),
                    essay_b=ComparisonEssay(essay_id="e2", text_content=_ESSAYS[1].text_content),
                    essay_instructions="Argue for the transport investment your city needs most.",
                    llm_config=LLMConfig(provider=LLMProviderName.HEURISTIC),
                    callback_topic=topic_name(Topic.LLM_COMPARISON_RESULT),
                    request_metadata=_CALLBACK_METADATA,
                    callback_key=str(_BATCH_ID),
                ),
            ),
        ),
    ),
    Topic.LLM_COMPARISON_RESULT: TopicParties(
        producer=LLM,
        consumers=(CJ,),
        key=(
            "the request's `callback_key` (the CJ batch id), else the request message's key, "
            "else `request_id`"
        ),
        note=(
            "The LLM provider publishes each answer to the request's `callback_topic`, which "
            "defaults to this topic."
        ),
        examples=(
            Example(
                "verdict",
                "The judge preferred essay B",
                str(_BATCH_ID),
                LLMComparisonResultV1(
                    request_id=_COMPARISON_REQUEST_ID,
                    request_metadata=_CALLBACK_METADATA,
                    winner=ComparisonWinner.ESSAY_B,
                    justification="Essay B supports each claim with an example.",
                    confidence=4,
                    provider="heuristic",
                    model="heuristic-v1",
                    latency_ms=3,
                ),
            ),
            Example(
                "error",
                "The provider kept answering 429: a retryable error callback",
                str(_BATCH_ID),
                LLMComparisonResultV1(
                    request_id=_COMPARISON_REQUEST_ID,
                    request_metadata=_CALLBACK_METADATA,
                    error_detail=_error(
                        ErrorCode.RATE_LIMITED,
                        "openai answered 429 after 5 attempts",
                        LLM,
                        "compare",
                    ),
                    provider="openai",
                    model="gpt-4o-mini",
                    latency_ms=30500,
                ),
            ),
        ),
    ),
    Topic.LLM_RUBRIC_REQUESTED: TopicParties(
        producer=SUBMISSION,
        consumers=(LLM,),
        key="the response id",
        examples=(
            Example(
                "rubric",
                "Score a completed answer, grounded in one reference passage",
                str(_RESPONSE_ID),
                LLMRubricRequestV1(
                    request_id=_RUBRIC_REQUEST_ID,
                    answer_text="Photosynthesis turns light energy into chemical energy ...",
                    question_text="Explain photosynthesis in your own words.",
                    rubric={"relevance": "answers the question asked"},
                    callback_topic=topic_name(Topic.LLM_RUBRIC_RESULT),
                    request_metadata=_RUBRIC_METADATA,
                    reference_passages=[
                        ReferencePassage(
                            passage_id="bio-3.2", text="Plants convert light into glucose ..."
                        )
                    ],
                ),
            ),
        ),
    ),
    Topic.LLM_RUBRIC_RESULT: TopicParties(
        producer=LLM,
        consumers=(SUBMISSION,),
        key=(
            "the request's `callback_key`, else the request message's key (the response id), "
            "else `request_id`"
        ),
        note=(
            "The LLM provider publishes each answer to the request's `callback_topic`, which "
            "defaults to this topic."
        ),
        examples=(
            Example(
                "scores",
                "Rubric scores citing the reference passage",
                str(_RESPONSE_ID),
                LLMRubricResultV1(
                    request_id=_RUBRIC_REQUEST_ID,
                    request_metadata=_RUBRIC_METADATA,
                    scores=RubricScores(relevance=4, depth=3, clarity=4, technical=3),
                    overall=3.5,
                    feedback="Accurate; name the two stages of the process.",
                    citations=["bio-3.2"],
                    provider="openai",
                    model="gpt-4o-mini",
                    latency_ms=1850,
                    usage=TokenUsage(
                        prompt_tokens=900, completion_tokens=120, estimated_cost_usd=0.0002
                    ),
                ),
            ),
        ),
    ),
    Topic.ASSESSMENT_RESPONSE_COMPLETED: TopicParties(
        producer=SUBMISSION,
        consumers=(),
        key="the response id",
        examples=(
            Example(
                "completed",
                "A signed-in learner completed an answer",
                str(_RESPONSE_ID),
                AssessmentResponseCompletedV1(
                    response_id=_RESPONSE_ID,
                    question_id="q-photosynthesis",
                    module_slug="biology-101",
                    user_id="learner-17",
                    completed_at=EXAMPLE_TIME,
                    answer_length=412,
                    scoring_request_id=_RUBRIC_REQUEST_ID,
                ),
            ),
        ),
    ),
    Topic.ASSESSMENT_SCORED: TopicParties(
        producer=SUBMISSION,
        consumers=(),
        key="the response id",
        examples=(
            Example(
                "scored",
                "A completed answer received its rubric score",
                str(_RESPONSE_ID),
                AssessmentScoredV1(
                    response_id=_RESPONSE_ID,
                    score_id=example_id("score"),
                    question_id="q-photosynthesis",
                    module_slug="biology-101",
                    scores=RubricScores(relevance=4, depth=3, clarity=4, technical=3),
                    overall=3.5,
                    feedback="Accurate; name the two stages of the process.",
                    provider="openai",
                    model_id="gpt-4o-mini",
                    prompt_version="rubric-v3",
                    scored_at=EXAMPLE_TIME,
                ),
            ),
        ),
    ),
}
