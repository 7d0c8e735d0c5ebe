"""Definitions, rule scoring, fusion and stage progress (pure domain logic)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.config import DEFAULT_CONTENT_DIR
from submission_service.domain.assessments import (
    AssessmentDefinition,
    JobStatus,
    Module,
    Question,
    QuestionScore,
    QuestionType,
    ScoreStatus,
    SubmittedAnswer,
    essay_points,
    fuse,
    overall_progress,
    score_question,
    stage_progress,
)

OPTIONS = ({"id": "a", "text": "A"}, {"id": "b", "text": "B"})


def _question(**fields: Any) -> Question:
    return Question.model_validate({"id": "q", "prompt": "?", **fields})


MODULE = Module(slug="m", title="M", questions=(_question(type="essay", rubric={"depth": "x"}),))


class TestDefinitions:
    def test_shipped_content_loads(self) -> None:
        catalog = FileDefinitionCatalog.load(DEFAULT_CONTENT_DIR)
        definition = catalog.get("intro-writing")
        assert definition is not None
        assert {q.type for _, q in definition.questions()} == set(QuestionType)
        assert catalog.find_question("argument", "short-essay") is not None

    def test_theoretical_needs_a_correct_option_among_its_options(self) -> None:
        with pytest.raises(ValidationError, match="correct_option"):
            _question(type="theoretical", options=OPTIONS, correct_option="z")

    def test_essay_needs_a_rubric(self) -> None:
        with pytest.raises(ValidationError, match="rubric"):
            _question(type="essay")

    def test_duplicate_questions_in_a_module_are_refused(self) -> None:
        q = {"id": "q", "type": "profile", "prompt": "?", "options": OPTIONS}
        with pytest.raises(ValidationError, match="twice"):
            AssessmentDefinition.model_validate(
                {
                    "id": "d",
                    "title": "D",
                    "modules": [{"slug": "m", "title": "M", "questions": [q, q]}],
                }
            )


class TestScoreQuestion:
    def test_theoretical_correct_and_incorrect(self) -> None:
        q = _question(type="theoretical", options=OPTIONS, correct_option="b", weight=2)
        right = score_question(MODULE, q, SubmittedAnswer("r1", "b"))
        wrong = score_question(MODULE, q, SubmittedAnswer("r2", "a"))
        assert (right.status, right.score, right.detail["correct"]) == (ScoreStatus.SCORED, 2, True)
        assert (wrong.score, wrong.detail["correct"]) == (0.0, False)

    def test_selected_option_may_come_from_metadata(self) -> None:
        q = _question(type="theoretical", options=OPTIONS, correct_option="b")
        answer = SubmittedAnswer("r", "my answer is B", {"selected_option": "b"})
        assert score_question(MODULE, q, answer).score == 1.0

    def test_profile_gets_full_weight_for_any_valid_option(self) -> None:
        q = _question(type="profile", options=OPTIONS, weight=0.5)
        assert score_question(MODULE, q, SubmittedAnswer("r", "a")).score == 0.5
        invalid = score_question(MODULE, q, SubmittedAnswer("r", "zzz"))
        assert invalid.status is ScoreStatus.MISSING

    def test_unanswered_questions_are_missing_with_zero(self) -> None:
        q = _question(type="profile", options=OPTIONS)
        for answer in (None, SubmittedAnswer("r", "   ")):
            scored = score_question(MODULE, q, answer)
            assert (scored.status, scored.score) == (ScoreStatus.MISSING, 0.0)

    def test_answered_essays_wait_for_rubric_scoring(self) -> None:
        q = _question(type="essay", rubric={"depth": "x"})
        scored = score_question(MODULE, q, SubmittedAnswer("r", "An essay."))
        assert (scored.status, scored.score, scored.response_id) == (ScoreStatus.PENDING, None, "r")


class TestFusion:
    def test_totals_by_type_and_degradation(self) -> None:
        scores = [
            QuestionScore("m", "a", QuestionType.THEORETICAL, ScoreStatus.SCORED, 1.0, 1.0),
            QuestionScore("m", "b", QuestionType.PROFILE, ScoreStatus.MISSING, 0.5, 0.0),
            QuestionScore("m", "c", QuestionType.ESSAY, ScoreStatus.SCORED, 2.0, 1.5),
        ]
        fused = fuse(scores)
        assert (fused.total, fused.max_total, fused.percent) == (2.5, 3.5, 71.43)
        assert fused.degraded is True
        assert fused.by_type["essay"] == {"score": 1.5, "max_score": 2.0}

    @pytest.mark.parametrize(("overall", "points"), [(1, 0.0), (3, 1.0), (5, 2.0), (9, 2.0)])
    def test_essay_points_scale_the_rubric_overall(self, overall: float, points: float) -> None:
        assert essay_points(overall, 2.0) == points


class TestStageProgress:
    def test_the_four_stages_carry_the_original_weights(self) -> None:
        stages = stage_progress(rule_items=4, jobs=[])
        assert {s.name: s.weight for s in stages} == {
            "rule_score": 0.2,
            "gpt": 0.3,
            "rag": 0.3,
            "fusion": 0.2,
        }

    def test_stages_move_from_queued_to_completed(self) -> None:
        queued = stage_progress(
            rule_items=3,
            jobs=[
                ("gpt", JobStatus.QUEUED),
                ("rag", JobStatus.QUEUED),
                ("fusion", JobStatus.QUEUED),
            ],
        )
        assert [s.status for s in queued] == [
            JobStatus.COMPLETED,
            JobStatus.QUEUED,
            JobStatus.QUEUED,
            JobStatus.QUEUED,
        ]
        assert overall_progress(queued) == 0.2
        gpt_done = stage_progress(
            rule_items=3,
            jobs=[
                ("gpt", JobStatus.COMPLETED),
                ("rag", JobStatus.IN_PROGRESS),
                ("fusion", JobStatus.QUEUED),
            ],
        )
        assert [s.status for s in gpt_done][1:] == [
            JobStatus.COMPLETED,
            JobStatus.IN_PROGRESS,
            JobStatus.QUEUED,
        ]
        assert overall_progress(gpt_done) == 0.5
        done = stage_progress(
            rule_items=3,
            jobs=[
                ("gpt", JobStatus.COMPLETED),
                ("rag", JobStatus.COMPLETED),
                ("fusion", JobStatus.COMPLETED),
            ],
        )
        assert all(s.status is JobStatus.COMPLETED for s in done)
        assert overall_progress(done) == 1.0

    def test_a_skipped_rag_stage_says_so_and_counts_as_done(self) -> None:
        stages = stage_progress(
            rule_items=1,
            jobs=[
                ("gpt", JobStatus.COMPLETED),
                ("rag", JobStatus.SKIPPED),
                ("fusion", JobStatus.QUEUED),
            ],
        )
        rag = stages[2]
        assert (rag.name, rag.status, rag.done, rag.total, rag.skipped) == (
            "rag",
            JobStatus.SKIPPED,
            1,
            1,
            1,
        )
        assert overall_progress(stages) == 0.8

    @given(
        st.lists(
            st.tuples(st.sampled_from(["gpt", "rag", "fusion"]), st.sampled_from(list(JobStatus))),
            max_size=9,
        )
    )
    def test_progress_stays_between_zero_and_one(self, jobs: list[tuple[str, JobStatus]]) -> None:
        stages = stage_progress(rule_items=2, jobs=jobs)
        assert 0.0 <= overall_progress(stages) <= 1.0
        assert sum(s.weight for s in stages) == pytest.approx(1.0)
