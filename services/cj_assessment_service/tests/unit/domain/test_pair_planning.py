"""Pair planning: all pairs, coverage, adaptive top-ups, orientations, A/B balance and the
adaptive re-asking of soft verdicts."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cj_assessment_service.domain.batch import (
    plan_from_answers,
    plan_opening_pairs,
    plan_top_up,
)
from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.pair_planning import (
    PlanningHistory,
    closed_to_reversal,
    plan_adaptive_wave,
    plan_all_pairs,
    plan_coverage_wave,
    total_pairs,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def position_imbalance(n: int, pairs: list[tuple[int, int]]) -> int:
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    return max(abs(first[i] - second[i]) for i in range(n))


class TestPlanningHistory:
    @settings(max_examples=60, deadline=None)
    @given(
        n=st.integers(min_value=2, max_value=12),
        given_pairs=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=50),
        recorded=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=10),
    )
    def test_lookups_agree_with_a_set_of_the_pairs(
        self,
        n: int,
        given_pairs: list[tuple[int, int]],
        recorded: list[tuple[int, int]],
    ) -> None:
        # Duplicates included: a history may be given the same pair twice.
        given_pairs = [(a, b) for a, b in given_pairs if a < n and b < n and a != b]
        recorded = [(a, b) for a, b in recorded if a < n and b < n and a != b]
        history = PlanningHistory.from_pairs(n, given_pairs)
        for pair in recorded:
            history.record(pair)
        model = set(given_pairs) | set(recorded)
        first, second = (
            np.array(side, dtype=np.int64)
            for side in zip(*[(i, j) for i in range(n) for j in range(n) if i != j], strict=True)
        )
        forward, backward = history.free_orientations(first, second)
        assert list(forward) == [(i, j) not in model for i, j in zip(first, second, strict=True)]
        assert list(backward) == [(j, i) not in model for i, j in zip(first, second, strict=True)]
        assert all(
            history.is_asked(int(i), int(j)) == ((i, j) in model)
            for i, j in zip(first, second, strict=True)
        )
        asked_first, asked_second = history.pairs()
        assert set(zip(asked_first.tolist(), asked_second.tolist(), strict=True)) == model


class TestAllPairs:
    def test_ten_essays_give_45_distinct_pairs(self) -> None:
        pairs = plan_all_pairs(10, rng())
        assert len(pairs) == 45
        assert len({frozenset(p) for p in pairs}) == 45

    @settings(max_examples=30, deadline=None)
    @given(n=st.integers(min_value=2, max_value=40), seed=st.integers(0, 1000))
    def test_every_pair_once_with_balanced_positions(self, n: int, seed: int) -> None:
        pairs = plan_all_pairs(n, rng(seed))
        assert len({frozenset(p) for p in pairs}) == total_pairs(n) == len(pairs)
        assert position_imbalance(n, pairs) <= 1

    def test_the_opening_is_all_pairs_when_the_budget_covers_them(self) -> None:
        pairs = plan_opening_pairs(
            10, 45, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng()
        )
        assert len(pairs) == 45


class TestCoverageWave:
    def test_every_essay_is_compared_and_positions_balance(self) -> None:
        pairs = plan_coverage_wave(50, 4, 1000, rng())
        appearances = Counter(i for p in pairs for i in p)
        assert set(appearances) == set(range(50))
        assert set(appearances.values()) == {4}
        assert position_imbalance(50, pairs) == 0
        assert len({frozenset(p) for p in pairs}) == len(pairs)

    def test_the_limit_caps_the_wave(self) -> None:
        assert len(plan_coverage_wave(50, 4, 30, rng())) == 30

    def test_the_opening_is_coverage_when_the_budget_is_short(self) -> None:
        pairs = plan_opening_pairs(
            100, 500, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng()
        )
        assert 0 < len(pairs) < 500
        assert {i for p in pairs for i in p} == set(range(100))

    def test_coverage_is_one_ring_each_essay_once_as_a_and_once_as_b(self) -> None:
        pairs = plan_opening_pairs(
            100, 500, comparisons_per_essay=10, max_pairs_per_step=500, rng=rng()
        )
        assert len(pairs) == 100
        assert set(Counter(a for a, _ in pairs).values()) == {1}
        assert set(Counter(b for _, b in pairs).values()) == {1}
        assert len({frozenset(p) for p in pairs}) == 100


class TestAdaptiveWave:
    def test_close_uncertain_pairs_are_preferred(self) -> None:
        scores = np.array([0.0, 0.05, 3.0, 6.0])
        errors = np.array([1.0, 1.0, 0.2, 0.2])
        pairs = plan_adaptive_wave(scores, errors, PlanningHistory(4), 1, rng())
        assert [frozenset(p) for p in pairs] == [frozenset((0, 1))]

    def test_one_wave_spreads_over_the_essays(self) -> None:
        pairs = plan_adaptive_wave(np.zeros(20), np.ones(20), PlanningHistory(20), 10, rng())
        assert len(pairs) == 10
        assert {i for p in pairs for i in p} == set(range(20))

    def test_essays_with_little_information_come_first(self) -> None:
        generator = rng(3)
        asked = plan_all_pairs(10, generator)  # essays 0..9 all compared; 10 and 11 never
        history = PlanningHistory.from_pairs(12, asked)
        scores = np.linspace(-1.0, 1.0, 12)
        pairs = plan_adaptive_wave(scores, np.full(12, 0.5), history, 2, generator)
        assert {10, 11} <= {i for p in pairs for i in p}

    def test_far_apart_pairs_are_not_preferred_over_informative_ones(self) -> None:
        scores = np.array([-6.0, -5.0, 0.0, 0.4, 5.0, 6.0])
        history = PlanningHistory(6)
        pairs = plan_adaptive_wave(scores, np.ones(6), history, 3, rng())
        assert {frozenset(p) for p in pairs} == {
            frozenset((0, 1)),
            frozenset((2, 3)),
            frozenset((4, 5)),
        }

    def test_same_rng_gives_the_same_wave(self) -> None:
        generator = rng(7)
        scores = generator.normal(size=40)
        errors = generator.uniform(0.2, 1.0, size=40)
        asked = plan_coverage_wave(40, 2, 40, generator)
        plans = [plan_top_up(scores, errors, asked, 20, rng=rng(1)) for _ in range(2)]
        assert plans[0] == plans[1]
        assert len(plans[0]) == 20

    def test_a_pair_asked_in_one_orientation_is_asked_in_the_other(self) -> None:
        history = PlanningHistory.from_pairs(2, [(0, 1)])
        pairs = plan_adaptive_wave(np.zeros(2), np.ones(2), history, 5, rng())
        assert pairs == [(1, 0)]

    def test_nothing_is_left_when_both_orientations_were_asked(self) -> None:
        history = PlanningHistory.from_pairs(2, [(0, 1), (1, 0)])
        assert plan_adaptive_wave(np.zeros(2), np.ones(2), history, 5, rng()) == []

    def test_large_batches_use_score_neighbourhoods(self) -> None:
        n = 1000
        scores = np.linspace(-3, 3, n)
        pairs = plan_adaptive_wave(scores, np.full(n, 0.5), PlanningHistory(n), 400, rng())
        assert len(pairs) == 400
        assert max(abs(a - b) for a, b in pairs) <= 12

    @settings(max_examples=40, deadline=None)
    @given(
        n=st.integers(min_value=2, max_value=30),
        waves=st.integers(min_value=1, max_value=6),
        size=st.integers(min_value=1, max_value=40),
        seed=st.integers(0, 1000),
    )
    def test_waves_never_repeat_an_orientation_and_keep_positions_balanced(
        self, n: int, waves: int, size: int, seed: int
    ) -> None:
        generator = rng(seed)
        asked: list[tuple[int, int]] = []
        for _ in range(waves):
            scores = generator.normal(size=n)
            errors = generator.uniform(0.1, 1.0, size=n)
            planned = plan_top_up(scores, errors, asked, size, rng=generator)
            assert len(planned) <= size
            asked.extend(planned)
        assert len(asked) == len(set(asked))
        assert all(a != b for a, b in asked)
        per_essay = Counter(i for p in asked for i in p)
        assert position_imbalance(n, asked) <= max(2, max(per_essay.values(), default=0) // 2)


def answered_pairs(
    pairs: list[tuple[int, int]], probabilities: list[float | None], n: int = 4
) -> Comparisons:
    """Comparisons of `pairs` whose choices follow the stated probabilities (None: hard, A won)."""
    return Comparisons.from_lists(
        n,
        [a for a, _ in pairs],
        [b for _, b in pairs],
        [p is None or p > 0.5 for p in probabilities],
        probabilities,
    )


class TestAdaptiveReasking:
    def test_a_sure_soft_verdict_closes_its_pair_and_an_uncertain_one_does_not(self) -> None:
        answered = answered_pairs([(0, 1), (2, 3)], [0.9, 0.55])
        assert closed_to_reversal(answered, [(0, 1), (2, 3)], band=0.15) == [(0, 1)]

    def test_pairs_in_flight_are_closed_once_verdicts_are_soft(self) -> None:
        answered = answered_pairs([(0, 1)], [0.6])
        assert closed_to_reversal(answered, [(0, 1), (1, 2)], band=0.15) == [(1, 2)]

    def test_hard_verdicts_close_nothing(self) -> None:
        answered = answered_pairs([(0, 1), (2, 3)], [None, None])
        assert closed_to_reversal(answered, [(0, 1), (2, 3), (1, 2)], band=0.15) is None

    def test_the_reverse_of_a_closed_pair_is_never_planned(self) -> None:
        history = PlanningHistory.from_pairs(2, [(0, 1)], closed=[(0, 1)])
        assert plan_adaptive_wave(np.zeros(2), np.ones(2), history, 5, rng()) == []
        assert history.pairs()[0].tolist() == [0]  # still asked once, not twice

    def test_a_pair_planned_in_a_wave_is_not_reversed_in_the_same_wave(self) -> None:
        history = PlanningHistory.from_pairs(2, [], closed=[])
        assert len(plan_adaptive_wave(np.zeros(2), np.ones(2), history, 5, rng())) == 1

    def test_only_the_uncertain_pair_is_asked_again_in_reverse(self) -> None:
        # Every pair of four essays asked once; the judge was sure of all but {2, 3}.
        asked = [(0, 1), (2, 0), (0, 3), (1, 2), (3, 1), (2, 3)]
        answered = answered_pairs(asked, [0.95, 0.1, 0.9, 0.85, 0.05, 0.52])
        planned = plan_from_answers(answered, asked, 6, rng=rng(), reask_band=0.15)
        assert planned == [(3, 2)]

    def test_with_hard_verdicts_every_reverse_stays_open(self) -> None:
        asked = [(0, 1), (2, 0), (0, 3), (1, 2), (3, 1), (2, 3)]
        answered = answered_pairs(asked, [None] * 6)
        planned = plan_from_answers(answered, asked, 6, rng=rng(), reask_band=0.15)
        assert sorted(planned) == sorted((b, a) for a, b in asked)
