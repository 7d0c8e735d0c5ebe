"""The offline judge on the sample essays: it is not fooled by texts that game its features,
and it ranks the samples at least as well as the judge it replaced."""

from __future__ import annotations

import csv
import itertools
import math
import random
from pathlib import Path

import pytest

from common_core.events.llm import ComparisonWinner
from llm_provider_service.domain.heuristic_judge import (
    HeuristicComparison,
    compare_essays,
    content_stems,
    score_answer,
    text_features,
    words,
)

SAMPLES = Path(__file__).resolve().parents[5] / "samples"
PROMPT = (SAMPLES / "prompt.md").read_text(encoding="utf-8")
RUBRIC = (SAMPLES / "rubric.md").read_text(encoding="utf-8")
INTENDED = {
    row["essay_id"]: int(row["intended_rank"])
    for row in csv.DictReader((SAMPLES / "intended_order.csv").open(encoding="utf-8"))
}
ESSAYS = {
    essay_id: (SAMPLES / "essays" / f"{essay_id}.txt").read_text(encoding="utf-8")
    for essay_id in INTENDED
}

GOOD = ESSAYS["s07"]  # intended rank 1, grade A
HONEST_WEAK = ESSAYS["s03"]  # grade E: on topic, an opinion without argument, many errors

# Round-robin Spearman of the judge this one replaced (features: length, vocabulary range,
# sentence variety, relevance) on the same essays, prompt and rubric: 0.8878.
PREVIOUS_JUDGE_SPEARMAN = 0.8878

OFF_TOPIC = (
    "Volcanoes form where molten rock from deep inside the Earth finds a way to the surface. "
    "Most of them sit along the edges of tectonic plates, for example around the Pacific "
    "Ocean, where one plate slides beneath another and melts as it sinks.\n\n"
    "Not every eruption looks the same. Some volcanoes, such as those in Hawaii, release "
    "runny lava that flows slowly downhill, while others explode violently because gas is "
    "trapped in thick, sticky magma. The eruption of Mount Vesuvius in the year 79 buried "
    "the Roman towns of Pompeii and Herculaneum under metres of ash.\n\n"
    "However, volcanoes are not only destructive. Volcanic soil is extremely fertile, so "
    "farmers have always settled on their slopes, and in Iceland the heat underground warms "
    "homes and produces electricity. In conclusion, volcanoes are dangerous neighbours, but "
    "people who understand them can live safely beside them and even benefit from them."
)

_SWAPPED = {
    ComparisonWinner.ESSAY_A: ComparisonWinner.ESSAY_B,
    ComparisonWinner.ESSAY_B: ComparisonWinner.ESSAY_A,
}


def _shuffled(text: str, seed: int) -> str:
    tokens = text.split()
    random.Random(seed).shuffle(tokens)
    return " ".join(tokens)


def _padded(text: str, copies: int) -> str:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return "\n\n".join([paragraphs[1]] * copies)


def _keyword_list() -> str:
    seen: dict[str, None] = {}
    for word in words(PROMPT + " " + RUBRIC):
        if word in content_stems(word):
            seen.setdefault(word, None)
    return ", ".join(seen)


TRICKS = {
    "prompt pasted verbatim": PROMPT,
    "prompt and rubric pasted": PROMPT + "\n\n" + RUBRIC,
    **{f"good essay shuffled (seed {seed})": _shuffled(GOOD, seed) for seed in range(5)},
    "good paragraph pasted twice": _padded(GOOD, 2),
    "good paragraph pasted six times": _padded(GOOD, 6),
    "keyword list": _keyword_list(),
    "keywords without punctuation": _keyword_list().replace(",", ""),
    "off-topic essay": OFF_TOPIC,
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
    def test_every_weak_sample_beats_the_trick(self, trick: str) -> None:
        # All E-grade essays, not only the one picked above.
        for essay_id in ("s03", "s14", "s21", "s08"):
            verdict = _compare(ESSAYS[essay_id], TRICKS[trick])
            assert verdict.winner is ComparisonWinner.ESSAY_A, essay_id

    def test_the_prompt_pasted_verbatim_loses_to_every_sample_essay(self) -> None:
        for essay_id, essay in ESSAYS.items():
            assert _compare(essay, PROMPT).winner is ComparisonWinner.ESSAY_A, essay_id

    def test_shuffling_the_best_essay_makes_it_worse_than_the_original(self) -> None:
        assert score_answer(_shuffled(GOOD, 0), PROMPT, RUBRIC).overall < (
            score_answer(GOOD, PROMPT, RUBRIC).overall
        )

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
        rho = _spearman([-wins[i] for i in ids], [INTENDED[i] for i in ids])
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
