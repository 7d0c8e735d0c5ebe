"""The offline judge: deterministic, symmetric, sensible, honest."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from common_core.events.llm import ComparisonWinner
from llm_provider_service.domain.heuristic_judge import (
    HeuristicComparison,
    compare_essays,
    score_answer,
    text_features,
)
from llm_provider_service.testing.sample_essays import (
    DEVELOPED_ON_TOPIC,
    INSTRUCTIONS,
    OFF_TOPIC_DEVELOPED,
    ONE_LINE,
    ORDINARY_ESSAYS,
)

_SWAPPED = {
    ComparisonWinner.ESSAY_A: ComparisonWinner.ESSAY_B,
    ComparisonWinner.ESSAY_B: ComparisonWinner.ESSAY_A,
}


def _compare(
    a: str, b: str, instructions: str = INSTRUCTIONS, ids: tuple[str, str] = ("a", "b")
) -> HeuristicComparison:
    return compare_essays(
        essay_a_id=ids[0], essay_a=a, essay_b_id=ids[1], essay_b=b, instructions=instructions
    )


class TestDeterminism:
    def test_same_pair_gives_the_same_verdict_every_time(self) -> None:
        first = _compare(DEVELOPED_ON_TOPIC, OFF_TOPIC_DEVELOPED)
        for _ in range(5):
            again = _compare(DEVELOPED_ON_TOPIC, OFF_TOPIC_DEVELOPED)
            assert again == first


class TestSymmetry:
    def test_swapping_the_essays_swaps_the_verdict_for_every_sample_pair(self) -> None:
        for i, a in enumerate(ORDINARY_ESSAYS):
            for b in ORDINARY_ESSAYS[i + 1 :]:
                forward = _compare(a, b)
                backward = _compare(b, a, ids=("b", "a"))
                assert backward.winner == _SWAPPED[forward.winner]
                assert backward.confidence == forward.confidence

    def test_a_tie_is_broken_by_content_so_swapping_still_swaps(self) -> None:
        # Two texts with identical features: same words, different order.
        a = "Cars pollute city air. Buses help."
        b = "Buses help. Cars pollute city air."
        assert text_features(a, INSTRUCTIONS) == text_features(b, INSTRUCTIONS)
        forward = _compare(a, b)
        backward = _compare(b, a, ids=("b", "a"))
        assert "tie broken" in forward.justification
        assert backward.winner == _SWAPPED[forward.winner]

    @settings(max_examples=60, deadline=None)
    @given(
        a=st.text(min_size=0, max_size=300),
        b=st.text(min_size=0, max_size=300),
        instructions=st.text(max_size=100),
    )
    def test_symmetry_holds_for_arbitrary_texts(self, a: str, b: str, instructions: str) -> None:
        forward = _compare(a, b, instructions, ids=("x", "y"))
        backward = _compare(b, a, instructions, ids=("y", "x"))
        if a == b:
            return  # identical essays: either verdict names an identical text
        assert backward.winner == _SWAPPED[forward.winner]


class TestPreferences:
    def test_prefers_a_developed_on_topic_essay_over_a_one_liner(self) -> None:
        assert _compare(DEVELOPED_ON_TOPIC, ONE_LINE).winner is ComparisonWinner.ESSAY_A
        assert _compare(ONE_LINE, DEVELOPED_ON_TOPIC).winner is ComparisonWinner.ESSAY_B

    def test_prefers_an_on_topic_essay_over_an_equally_developed_off_topic_one(self) -> None:
        assert _compare(DEVELOPED_ON_TOPIC, OFF_TOPIC_DEVELOPED).winner is ComparisonWinner.ESSAY_A
        assert _compare(OFF_TOPIC_DEVELOPED, DEVELOPED_ON_TOPIC).winner is ComparisonWinner.ESSAY_B

    def test_a_clear_difference_gets_more_confidence_than_a_near_tie(self) -> None:
        clear = _compare(DEVELOPED_ON_TOPIC, ONE_LINE)
        near = _compare(ORDINARY_ESSAYS[8], ORDINARY_ESSAYS[9])
        assert clear.confidence > near.confidence
        assert 1 <= near.confidence <= 5
        assert 1 <= clear.confidence <= 5


class TestHonesty:
    def test_every_justification_says_it_is_a_heuristic(self) -> None:
        verdict = _compare(DEVELOPED_ON_TOPIC, ONE_LINE)
        assert "Heuristic judge (not a language model)" in verdict.justification

    def test_rubric_feedback_says_no_language_model_was_used(self) -> None:
        assert "no language model" in score_answer(DEVELOPED_ON_TOPIC, INSTRUCTIONS).feedback


class TestRubricScores:
    @settings(max_examples=80, deadline=None)
    @given(answer=st.text(max_size=500), question=st.text(max_size=200))
    def test_scores_stay_within_one_to_five(self, answer: str, question: str) -> None:
        scores = score_answer(answer, question)
        for value in (scores.relevance, scores.depth, scores.clarity, scores.technical):
            assert 1 <= value <= 5
        assert 1.0 <= scores.overall <= 5.0

    def test_a_developed_relevant_answer_outscores_a_one_liner(self) -> None:
        good = score_answer(DEVELOPED_ON_TOPIC, INSTRUCTIONS)
        poor = score_answer(ONE_LINE, INSTRUCTIONS)
        assert good.overall > poor.overall
        assert good.depth > poor.depth
