"""The heuristic judge behind the Judge interface passes the request's rubric to the features."""

from __future__ import annotations

import uuid

from common_core.events.llm import ComparisonEssay, LLMComparisonRequestV1, LLMRubricRequestV1
from llm_provider_service.application.judging import HeuristicJudge
from llm_provider_service.application.ports import ModelChoice
from llm_provider_service.domain.heuristic_judge import HEURISTIC_MODEL

_CHOICE = ModelChoice(model=HEURISTIC_MODEL, temperature=None, max_tokens=512)
_QUESTION = "Should schools ban mobile phones during lessons?"
# Nothing from the question, only the criteria of the rubric below.
_ANSWER = (
    "My introduction presents the issue. A counter-argument follows and is answered, and the "
    "conclusion sums up the organisation of the reasons."
)


def _rubric_request(rubric: dict[str, object]) -> LLMRubricRequestV1:
    return LLMRubricRequestV1(
        request_id=uuid.uuid4(),
        answer_text=_ANSWER,
        question_text=_QUESTION,
        rubric=rubric,
        callback_topic="callbacks",
    )


class TestHeuristicJudgeUsesTheRubric:
    async def test_rubric_criteria_in_a_json_rubric_count_towards_relevance(self) -> None:
        judge = HeuristicJudge()
        bare = await judge.score(_rubric_request({}), _CHOICE)
        with_rubric = await judge.score(
            _rubric_request(
                {"organisation": {"levels": ["an introduction", "a counter-argument"]}}
                | {"conclusion": "follows from the reasons"}
            ),
            _CHOICE,
        )
        assert "relevance 0.00" in bare.answer.feedback
        assert "relevance 0.00" not in with_rubric.answer.feedback
        assert with_rubric.answer.overall > bare.answer.overall

    async def test_the_comparison_rubric_text_changes_the_feature_scores(self) -> None:
        def request(rubric: str | None) -> LLMComparisonRequestV1:
            return LLMComparisonRequestV1(
                request_id=uuid.uuid4(),
                essay_a=ComparisonEssay(essay_id="a", text_content=_ANSWER),
                essay_b=ComparisonEssay(essay_id="b", text_content="Phones are useful tools."),
                essay_instructions=_QUESTION,
                judge_rubric=rubric,
                callback_topic="callbacks",
            )

        judge = HeuristicJudge()
        bare = await judge.compare(request(None), _CHOICE)
        with_rubric = await judge.compare(
            request("An introduction, a counter-argument, a conclusion and organised reasons."),
            _CHOICE,
        )
        assert bare.answer.justification != with_rubric.answer.justification
        assert "not a language model" in with_rubric.answer.justification

    async def test_the_request_language_reaches_the_features(self) -> None:
        request = LLMRubricRequestV1(
            request_id=uuid.uuid4(),
            answer_text="Skolor borde förbjuda mobiltelefoner under lektionerna.",
            question_text="Ska skolor förbjuda mobiltelefoner?",
            language="sv",
            callback_topic="callbacks",
        )
        judgement = await HeuristicJudge().score(request, _CHOICE)
        assert "word order n/a" in judgement.answer.feedback
