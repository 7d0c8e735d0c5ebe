"""Batch scoring and grade projection from anchors."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.grade_projection import grade_scale, project_grades
from cj_assessment_service.domain.scoring import ScoredEssay, score_batch


def _answers(n: int) -> Comparisons:
    """Every pair both ways; the higher index always wins."""
    pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    return Comparisons.from_lists(
        n, [a for a, _ in pairs], [b for _, b in pairs], [a > b for a, b in pairs]
    )


class TestScoreBatch:
    def test_rankings_follow_the_verdicts(self) -> None:
        essays = [ScoredEssay(f"e{i}") for i in range(6)]
        scores = score_batch(essays, _answers(6))
        assert [r.essay_id for r in scores.rankings] == [f"e{i}" for i in range(5, -1, -1)]
        assert [r.rank for r in scores.rankings] == [1, 2, 3, 4, 5, 6]
        assert all(r.comparisons == 10 and r.standard_error for r in scores.rankings)
        assert scores.statistics.comparisons_per_essay == 10.0
        assert scores.grade_projections is None

    def test_anchors_are_fitted_but_not_ranked(self) -> None:
        essays = [
            ScoredEssay("s0"),
            ScoredEssay("s1"),
            ScoredEssay("a", "B"),
            ScoredEssay("b", "A"),
        ]
        scores = score_batch(essays, _answers(4))
        assert [r.essay_id for r in scores.rankings] == ["s1", "s0"]
        assert scores.grade_projections is not None
        assert {p.essay_id for p in scores.grade_projections} == {"s0", "s1"}

    def test_a_single_essay_gets_rank_one(self) -> None:
        scores = score_batch([ScoredEssay("only")], _answers(1))
        assert [(r.essay_id, r.rank, r.score) for r in scores.rankings] == [("only", 1, 0.0)]
        assert scores.statistics.position_bias_logit is None
        assert scores.statistics.position_bias_standard_error is None

    def test_the_position_bias_is_reported_with_its_standard_error(self) -> None:
        essays = [ScoredEssay(f"e{i}") for i in range(6)]
        statistics = score_batch(essays, _answers(6)).statistics
        assert statistics.position_bias_logit is not None
        assert statistics.position_bias_standard_error is not None
        assert statistics.position_bias_standard_error > 0.0

    def test_the_verdicts_that_carried_a_probability_are_counted_as_soft(self) -> None:
        essays = [ScoredEssay(f"e{i}") for i in range(6)]
        hard = _answers(6)
        probabilities: list[float | None] = [
            None if i % 3 else (0.8 if won else 0.2) for i, won in enumerate(hard.a_won)
        ]
        soft = Comparisons.from_lists(
            6,
            list(hard.essay_a),
            list(hard.essay_b),
            list(hard.a_won),
            probability_a=probabilities,
        )
        assert score_batch(essays, soft).statistics.soft_verdicts == 10
        assert score_batch(essays, hard).statistics.soft_verdicts == 0

    def test_an_adaptive_batch_marks_scale_separation_and_split_half_not_valid(self) -> None:
        essays = [ScoredEssay(f"e{i}") for i in range(6)]
        adaptive = score_batch(essays, _answers(6), adaptive_pairing=True).statistics
        assert adaptive.not_valid_reliabilities == [
            "scale_separation_reliability",
            "split_half_reliability",
        ]
        assert score_batch(essays, _answers(6)).statistics.not_valid_reliabilities is None


class TestGradeProjection:
    def test_grades_are_ordered_by_anchor_scores(self) -> None:
        grades, boundaries = grade_scale({"A": [2.0], "C": [-2.0], "B": [0.0, 0.2]})
        assert grades == ["C", "B", "A"]
        assert list(boundaries) == [-0.95, 1.05]

    def test_probabilities_are_not_one_hot_near_a_boundary(self) -> None:
        anchors = {"C": [-2.0], "B": [0.0], "A": [2.0]}
        projected = project_grades(np.array([1.0, 2.5]), np.array([0.5, 0.3]), anchors)
        near, far = projected
        assert 0.3 < near.probabilities["A"] < 0.7
        assert far.predicted_grade == "A"
        assert far.confidence > 0.9

    @settings(max_examples=50, deadline=None)
    @given(
        score=st.floats(min_value=-5, max_value=5),
        error=st.floats(min_value=0.0, max_value=3.0),
    )
    def test_probabilities_sum_to_one(self, score: float, error: float) -> None:
        anchors = {"C": [-2.0], "B": [0.0], "A": [2.0]}
        (projection,) = project_grades(np.array([score]), np.array([error]), anchors)
        assert abs(sum(projection.probabilities.values()) - 1.0) < 1e-5
        assert projection.confidence == max(projection.probabilities.values())
