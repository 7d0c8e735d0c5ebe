"""Fusing an essay's rule, gpt and rag scores: the weights, the disagreement flag, degraded mode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from submission_service.domain.assessments import JobStatus
from submission_service.domain.essay_fusion import (
    FUSION_WEIGHTS,
    StageOutcome,
    essay_rule_score,
    fuse_essay,
)

DONE = JobStatus.COMPLETED


class TestWeights:
    def test_the_documented_weights(self) -> None:
        assert dict(FUSION_WEIGHTS) == {"rule_score": 0.2, "gpt": 0.4, "rag": 0.4}

    def test_all_three_stages_are_combined_with_their_weights(self) -> None:
        fusion = fuse_essay(2.0, StageOutcome(DONE, 4.0), StageOutcome(DONE, 5.0, ("kp-1",)))
        assert fusion.overall == pytest.approx(0.2 * 2.0 + 0.4 * 4.0 + 0.4 * 5.0)
        assert {p.stage: p.weight for p in fusion.parts} == {
            "rule_score": 0.2,
            "gpt": 0.4,
            "rag": 0.4,
        }
        assert fusion.degraded is False
        assert fusion.citations == ("kp-1",)


class TestDisagreement:
    @pytest.mark.parametrize(
        ("gpt", "rag", "flagged"),
        [(4.0, 5.0, False), (2.0, 3.0, False), (2.0, 3.5, True), (5.0, 1.0, True)],
    )
    def test_flagged_only_beyond_one_point(self, gpt: float, rag: float, flagged: bool) -> None:
        fusion = fuse_essay(3.0, StageOutcome(DONE, gpt), StageOutcome(DONE, rag))
        assert fusion.disagreement is flagged

    def test_never_flagged_without_both_scores(self) -> None:
        fusion = fuse_essay(3.0, StageOutcome(DONE, 5.0), StageOutcome(JobStatus.SKIPPED))
        assert fusion.disagreement is False


class TestDegradedMode:
    def test_no_reference_material_gives_rags_weight_to_the_others(self) -> None:
        fusion = fuse_essay(2.0, StageOutcome(DONE, 5.0), StageOutcome(JobStatus.SKIPPED))
        parts = {p.stage: p for p in fusion.parts}
        assert parts["rag"].status is JobStatus.SKIPPED
        assert parts["rag"].weight == 0.0
        assert parts["rag"].score is None
        assert parts["rule_score"].weight == pytest.approx(1 / 3, abs=1e-4)
        assert parts["gpt"].weight == pytest.approx(2 / 3, abs=1e-4)
        assert fusion.overall == pytest.approx((0.2 * 2.0 + 0.4 * 5.0) / 0.6, abs=1e-3)
        assert fusion.degraded is True

    def test_a_failed_gpt_stage_leaves_rule_and_rag(self) -> None:
        fusion = fuse_essay(3.0, StageOutcome(JobStatus.FAILED), StageOutcome(DONE, 4.0))
        assert fusion.overall == pytest.approx((0.2 * 3.0 + 0.4 * 4.0) / 0.6, abs=1e-3)
        assert fusion.degraded is True

    def test_without_any_llm_score_the_essay_is_not_scored_from_rules_alone(self) -> None:
        fusion = fuse_essay(5.0, StageOutcome(JobStatus.FAILED), StageOutcome(JobStatus.SKIPPED))
        assert fusion.failed
        assert fusion.overall is None
        assert all(p.weight == 0.0 for p in fusion.parts)

    @given(
        st.floats(1, 5),
        st.one_of(st.none(), st.floats(1, 5)),
        st.one_of(st.none(), st.floats(1, 5)),
    )
    def test_weights_of_the_parts_used_sum_to_one_and_the_score_stays_on_scale(
        self, rule: float, gpt: float | None, rag: float | None
    ) -> None:
        def outcome(value: float | None) -> StageOutcome:
            return (
                StageOutcome(DONE, value) if value is not None else StageOutcome(JobStatus.FAILED)
            )

        fusion = fuse_essay(rule, outcome(gpt), outcome(rag))
        if gpt is None and rag is None:
            assert fusion.failed
            return
        assert sum(p.weight for p in fusion.parts) == pytest.approx(1.0, abs=1e-3)
        assert fusion.overall is not None
        assert 1.0 - 1e-9 <= fusion.overall <= 5.0 + 1e-9


class TestRuleScore:
    QUESTION = "Should schools replace printed textbooks with digital ones?"

    def test_a_developed_answer_on_the_question_scores_five_and_a_fragment_little(self) -> None:
        developed = " ".join(["Schools should keep printed textbooks, not digital ones."] * 12)
        assert essay_rule_score(developed, self.QUESTION).score == 5.0
        fragment = essay_rule_score("digital good", self.QUESTION)
        assert fragment.score < 1.5
        assert (fragment.words, fragment.sentences) == (2, 0)

    def test_a_long_answer_that_never_uses_the_questions_terms_gets_no_credit(self) -> None:
        volcanoes = " ".join(["Volcanoes erupt where tectonic plates meet and magma rises."] * 12)
        rule = essay_rule_score(volcanoes, self.QUESTION)
        assert rule.question_terms == 0.0
        assert rule.score == 1.0
