"""Which payload model each registered topic carries."""

from __future__ import annotations

from pydantic import BaseModel

from common_core.events.assessment import AssessmentResponseCompletedV1, AssessmentScoredV1
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
)
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMRubricRequestV1,
    LLMRubricResultV1,
)
from common_core.topics import Topic

PAYLOAD_BY_TOPIC: dict[Topic, type[BaseModel]] = {
    Topic.CJ_ASSESSMENT_REQUESTED: CJAssessmentRequestV1,
    Topic.CJ_ASSESSMENT_COMPLETED: CJAssessmentCompletedV1,
    Topic.CJ_ASSESSMENT_FAILED: CJAssessmentFailedV1,
    Topic.LLM_COMPARISON_REQUESTED: LLMComparisonRequestV1,
    Topic.LLM_COMPARISON_RESULT: LLMComparisonResultV1,
    Topic.LLM_RUBRIC_REQUESTED: LLMRubricRequestV1,
    Topic.LLM_RUBRIC_RESULT: LLMRubricResultV1,
    Topic.ASSESSMENT_RESPONSE_COMPLETED: AssessmentResponseCompletedV1,
    Topic.ASSESSMENT_SCORED: AssessmentScoredV1,
}


def payload_model_for(topic: Topic) -> type[BaseModel]:
    """The payload model of a logical topic."""
    return PAYLOAD_BY_TOPIC[topic]
