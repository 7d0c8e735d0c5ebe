"""The offline judge on the sample essays: it is not fooled by texts that game its features,
and it ranks the samples at least as well as the judge it replaced."""

from __future__ import annotations

import itertools
import math

import pytest

from common_core.events.llm import ComparisonWinner
from llm_provider_service.domain.heuristic_judge import (
    HeuristicComparison,
    compare_essays,
    score_answer,
    text_features,
)
from llm_provider_service.testing.judge_tricks import (
    ESSAYS,
    GOOD_ID,
    HONEST_WEAK_ID,
    INTENDED_RANK,
    PROMPT,
    REFERENCE_PASSAGES,
    RUBRIC,
    WEAK_IDS,
    shuffled,
    tricks,
)

GOOD = ESSAYS[GOOD_ID]
HONEST_WEAK = ESSAYS[HONEST_WEAK_ID]
TRICKS = tricks()

# Round-robin Spearman of the judge this one replaced (features: length, vocabulary range,
# sentence variety, relevance) on the same essays, prompt and rubric: 0.8878.
PREVIOUS_JUDGE_SPEARMAN = 0.8878

_SWAPPED = {
    ComparisonWinner.ESSAY_A: ComparisonWinner.ESSAY_B,
    ComparisonWinner.ESSAY_B: ComparisonWinner.ESSAY_A,
}


def _compare(a: str, b: str, ids: tuple[str, str] = ("a", "b")) -> HeuristicComparison:
    return compare_essays(
        essay_a_id=ids[0],
        essay_a=a,
        essay_b_id=ids[1],
        essay_b=b,
        instructions=PROMPT,
        rubric=RUBRIC,
    )


def _average_ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _spearman(x: list[float], y: list[float]) -> float:
    rx, ry = _average_ranks(x), _average_ranks(y)
    mean_x, mean_y = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mean_x) * (b - mean_y) for a, b in zip(rx, ry, strict=True))
    var_x = sum((a - mean_x) ** 2 for a in rx)
    var_y = sum((b - mean_y) ** 2 for b in ry)
    return cov / math.sqrt(var_x * var_y)


class TestTricksLoseToAnHonestWeakEssay:
    @pytest.mark.parametrize("trick", TRICKS)
    def test_the_comparison_prefers_the_honest_weak_essay_in_both_orders(self, trick: str) -> None:
        text = TRICKS[trick]
        assert _compare(HONEST_WEAK, text).winner is ComparisonWinner.ESSAY_A
        assert _compare(text, HONEST_WEAK).winner is ComparisonWinner.ESSAY_B

    @pytest.mark.parametrize("trick", TRICKS)
    def test_the_rubric_scores_the_trick_below_the_honest_weak_essay(self, trick: str) -> None:
        honest = score_answer(HONEST_WEAK, PROMPT, RUBRIC)
        gamed = score_answer(TRICKS[trick], PROMPT, RUBRIC)
        assert gamed.overall < honest.overall

    @pytest.mark.parametrize("trick", TRICKS)
    def test_grounded_rubric_scoring_also_scores_the_trick_below_the_honest_weak_essay(
        self, trick: str
    ) -> None:
        # The rag stage: the same rubric plus the reference passages (key-point coverage).
        honest = score_answer(HONEST_WEAK, PROMPT, RUBRIC, references=REFERENCE_PASSAGES)
        gamed = score_answer(TRICKS[trick], PROMPT, RUBRIC, references=REFERENCE_PASSAGES)
        assert gamed.overall < honest.overall

    def test_pasting_the_reference_passages_is_copying_not_coverage(self) -> None:
        pasted = "\n\n".join(text for _, text in REFERENCE_PASSAGES)
        features = text_features(pasted, PROMPT, rubric=RUBRIC, references=REFERENCE_PASSAGES)
        assert features.key_points == 1.0
        assert features.originality == 0.0
        assert score_answer(pasted, PROMPT, RUBRIC, references=REFERENCE_PASSAGES).citations == ()

    @pytest.mark.parametrize("trick", TRICKS)
    def test_every_weak_sample_beats_the_trick(self, trick: str) -> None:
        # All E-grade essays, not only the one picked above.
        for essay_id in WEAK_IDS:
            verdict = _compare(ESSAYS[essay_id], TRICKS[trick])
            assert verdict.winner is ComparisonWinner.ESSAY_A, essay_id

    def test_the_prompt_pasted_verbatim_loses_to_every_sample_essay(self) -> None:
        for essay_id, essay in ESSAYS.items():
            assert _compare(essay, PROMPT).winner is ComparisonWinner.ESSAY_A, essay_id

    def test_shuffling_the_best_essay_makes_it_worse_than_the_original(self) -> None:
        assert score_answer(shuffled(GOOD, 0), PROMPT, RUBRIC).overall < (
            score_answer(GOOD, PROMPT, RUBRIC).overall
        )

    @pytest.mark.parametrize("seed", range(5))
    def test_a_short_answer_shuffled_is_caught_by_its_misplaced_capitals(self, seed: int) -> None:
        # Two paragraphs (167 words): too few function-word pairs for the bigram check alone;
        # the capitalised sentence starters that shuffling drops mid-sentence give it away.
        paragraphs = [p for p in GOOD.split("\n\n") if p.strip()]
        short = "\n\n".join(paragraphs[1:3])
        assert text_features(short, PROMPT, rubric=RUBRIC).word_order == 1.0
        assert text_features(shuffled(short, seed), PROMPT, rubric=RUBRIC).word_order == 0.0

    def test_an_off_topic_f_essay_scores_below_every_c_essay(self) -> None:
        off_topic_f = score_answer(ESSAYS["s17"], PROMPT, RUBRIC).overall  # about a favourite phone
        for essay_id in ("s16", "s01", "s13", "s22"):
            assert off_topic_f < score_answer(ESSAYS[essay_id], PROMPT, RUBRIC).overall

    def test_the_verdict_names_the_guard_that_caught_the_trick(self) -> None:
        verdict = _compare(HONEST_WEAK, PROMPT)
        assert "originality 0.00" in verdict.justification
        assert "Heuristic judge (not a language model)" in verdict.justification


class TestDeterminismAndSymmetry:
    @pytest.mark.parametrize("trick", TRICKS)
    def test_swapping_a_trick_and_the_honest_essay_swaps_the_winner_with_the_same_confidence(
        self, trick: str
    ) -> None:
        forward = _compare(HONEST_WEAK, TRICKS[trick], ids=("honest", "trick"))
        backward = _compare(TRICKS[trick], HONEST_WEAK, ids=("trick", "honest"))
        assert backward.winner == _SWAPPED[forward.winner]
        assert backward.confidence == forward.confidence

    def test_every_sample_pair_is_swap_symmetric(self) -> None:
        for (id_a, a), (id_b, b) in itertools.combinations(ESSAYS.items(), 2):
            forward = _compare(a, b, ids=(id_a, id_b))
            backward = _compare(b, a, ids=(id_b, id_a))
            assert backward.winner == _SWAPPED[forward.winner]
            assert backward.confidence == forward.confidence

    def test_the_same_inputs_give_the_same_verdict_and_scores(self) -> None:
        for trick in TRICKS.values():
            assert _compare(HONEST_WEAK, trick) == _compare(HONEST_WEAK, trick)
            assert score_answer(trick, PROMPT, RUBRIC) == score_answer(trick, PROMPT, RUBRIC)


class TestRankingTheSamples:
    def test_round_robin_ranking_agrees_with_the_intended_order_at_least_as_well_as_before(
        self,
    ) -> None:
        wins = dict.fromkeys(ESSAYS, 0)
        for (id_a, a), (id_b, b) in itertools.combinations(ESSAYS.items(), 2):
            verdict = _compare(a, b, ids=(id_a, id_b))
            wins[id_a if verdict.winner is ComparisonWinner.ESSAY_A else id_b] += 1
        ids = list(ESSAYS)
        rho = _spearman([-wins[i] for i in ids], [INTENDED_RANK[i] for i in ids])
        assert rho >= PREVIOUS_JUDGE_SPEARMAN
        assert rho >= 0.9

    def test_the_guards_leave_honest_sample_essays_alone(self) -> None:
        for essay_id, essay in ESSAYS.items():
            features = text_features(essay, PROMPT, rubric=RUBRIC)
            assert features.originality == 1.0, essay_id
            assert features.word_order == 1.0, essay_id
            assert features.sentence_structure == 1.0, essay_id


class TestRubricText:
    def test_the_rubrics_terms_count_towards_relevance(self) -> None:
        instructions = "Should schools ban mobile phones during lessons?"
        rubric = "Judge the organisation: an introduction, a counter-argument and a conclusion."
        # Nothing from the instructions, only the rubric's criteria.
        answer = (
            "My introduction presents the issue. A counter-argument follows and is answered, "
            "and the conclusion sums up the organisation of the reasons."
        )
        without = text_features(answer, instructions)
        with_rubric = text_features(answer, instructions, rubric=rubric)
        assert without.relevance is not None
        assert with_rubric.relevance is not None
        assert with_rubric.relevance > without.relevance


class TestKeyPointCoverage:
    def test_covering_more_key_points_scores_higher(self) -> None:
        passages = (
            ("kp-cost", "Digital textbooks cost less to update than printed editions."),
            ("kp-eyes", "Screens tire the eyes and distract readers with games."),
        )
        question = "Should schools replace printed textbooks with digital ones?"
        one = "Schools should switch because digital textbooks cost less to update than print."
        both = one + " However, screens tire the eyes and games distract readers."
        covered_one = score_answer(one, question, references=passages)
        covered_both = score_answer(both, question, references=passages)
        assert covered_one.citations == ("kp-cost",)
        assert covered_both.citations == ("kp-cost", "kp-eyes")
        assert covered_both.overall > covered_one.overall


class TestOtherLanguages:
    SWEDISH = (
        "Jag tycker att skolor borde förbjuda mobiltelefoner under lektionerna. Eleverna blir "
        "distraherade och lär sig mindre. Men telefoner kan också vara användbara verktyg."
    )
    QUESTION = "Ska skolor förbjuda mobiltelefoner under skoldagen?"

    def test_the_english_word_class_checks_are_not_made_for_another_language(self) -> None:
        features = text_features(self.SWEDISH, self.QUESTION, language="sv")
        assert features.word_order is None
        assert features.sentence_structure is None
        assert features.integrity == 1.0
        assert "word order n/a" in features.describe()

    def test_a_text_in_another_language_would_fail_them(self) -> None:
        # Why they are skipped: Swedish has none of the English function words.
        english_checks = text_features(self.SWEDISH, self.QUESTION, language="en")
        assert english_checks.sentence_structure is not None
        assert english_checks.sentence_structure < 0.5

    def test_copying_the_question_is_still_caught_in_another_language(self) -> None:
        copied = text_features(self.QUESTION + " " + self.QUESTION, self.QUESTION, language="sv")
        assert copied.originality == 0.0
        assert copied.overall == 0.0
