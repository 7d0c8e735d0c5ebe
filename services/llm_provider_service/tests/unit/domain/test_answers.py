"""Parsing model answers strictly."""

from __future__ import annotations

import json

import pytest

from common_core.events.llm import ComparisonWinner
from llm_provider_service.domain.answers import (
    COMPARISON_SCHEMA,
    parse_comparison_answer,
    parse_rubric_answer,
)
from llm_provider_service.domain.errors import MalformedAnswerError


class TestComparisonAnswers:
    def test_a_valid_object_parses(self) -> None:
        answer = parse_comparison_answer(
            json.dumps({"winner": "essay_b", "justification": "Clearer.", "confidence": 3})
        )
        assert answer.winner is ComparisonWinner.ESSAY_B
        assert answer.confidence == 3

    @pytest.mark.parametrize(("letter", "winner"), [("A", "essay_a"), ("B", "essay_b")])
    def test_the_verdict_letter_of_prompt_v2_parses(self, letter: str, winner: str) -> None:
        text = json.dumps({"winner": letter, "justification": "Clearer.", "confidence": 2})
        assert parse_comparison_answer(text).winner is ComparisonWinner(winner)

    def test_the_schema_asks_for_the_verdict_letter_first(self) -> None:
        assert next(iter(COMPARISON_SCHEMA["properties"])) == "winner"
        assert COMPARISON_SCHEMA["properties"]["winner"]["enum"] == ["A", "B"]

    def test_a_probability_in_the_answer_text_is_not_taken(self) -> None:
        text = json.dumps(
            {
                "winner": "A",
                "justification": "x",
                "confidence": 5,
                "probability_essay_a_better": 1.0,
            }
        )
        assert "probability_essay_a_better" not in parse_comparison_answer(text).model_dump()

    def test_a_code_fenced_object_parses(self) -> None:
        text = '```json\n{"winner": "essay_a", "justification": "x", "confidence": 5}\n```'
        assert parse_comparison_answer(text).winner is ComparisonWinner.ESSAY_A

    @pytest.mark.parametrize(
        "text",
        [
            None,
            "",
            "essay A is better",
            "{not json",
            '{"winner": "essay_c", "justification": "x", "confidence": 3}',
            '{"winner": "essay_a", "justification": "x", "confidence": 9}',
            '{"winner": "essay_a"}',
            '{"winner": "a", "justification": "x", "confidence": 3}',
            '{"winner": "C", "justification": "x", "confidence": 3}',
        ],
    )
    def test_malformed_answers_raise_parse_errors(self, text: str | None) -> None:
        with pytest.raises(MalformedAnswerError) as caught:
            parse_comparison_answer(text)
        assert caught.value.code.value == "parse_error"


class TestRubricAnswers:
    def test_a_valid_object_parses(self) -> None:
        answer = parse_rubric_answer(
            json.dumps(
                {
                    "scores": {"relevance": 5, "depth": 4, "clarity": 3, "technical": 2},
                    "overall": 3.5,
                    "feedback": "Good.",
                }
            )
        )
        assert answer.scores.relevance == 5
        assert answer.overall == 3.5

    def test_out_of_range_scores_are_malformed(self) -> None:
        text = json.dumps(
            {
                "scores": {"relevance": 0, "depth": 4, "clarity": 3, "technical": 2},
                "overall": 3.5,
                "feedback": "Good.",
            }
        )
        with pytest.raises(MalformedAnswerError):
            parse_rubric_answer(text)
