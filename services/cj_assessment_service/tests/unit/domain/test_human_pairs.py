"""Which pairs go to people, and to whom."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cj_assessment_service.domain.human_pairs import (
    assign_judges,
    choose_human_pairs,
    human_pair_count,
)


def test_the_share_is_of_all_comparisons_on_top_of_the_ai_budget_and_at_least_one() -> None:
    assert human_pair_count(180, 0.1) == 20  # 20 of 200
    assert human_pair_count(45, 0.2) == 12  # 12 of 57: 21 %
    assert human_pair_count(3, 0.1) == 1


def test_half_are_the_closest_pairs_and_half_span_the_gaps() -> None:
    rng = np.random.default_rng(0)
    scores = np.linspace(-3.0, 3.0, 60)
    errors = np.full(60, 0.5)
    chosen = choose_human_pairs(scores, errors, [], 20, rng)
    assert len(chosen) == 20
    gaps = [abs(scores[a] - scores[b]) for a, b in chosen]
    close, spread = gaps[:10], gaps[10:]
    assert max(close) <= 6.0 / 59 + 1e-9  # neighbours on the AI's scale
    # The stratified half reaches far apart pairs as well as near ones.
    assert max(spread) > 2.0
    assert min(spread) < 1.0


def test_no_orientation_asked_before_and_no_pair_twice() -> None:
    rng = np.random.default_rng(1)
    n = 6
    asked = [(a, b) for a in range(n) for b in range(a + 1, n)]  # every pair once, one way
    chosen = choose_human_pairs(np.zeros(n), np.ones(n), asked, 10, rng)
    assert chosen
    assert not set(chosen) & set(asked)
    keys = [(min(a, b), max(a, b)) for a, b in chosen]
    assert len(keys) == len(set(keys))


def test_every_orientation_asked_leaves_nothing_for_people() -> None:
    rng = np.random.default_rng(2)
    asked = [(a, b) for a in range(4) for b in range(4) if a != b]
    assert choose_human_pairs(np.zeros(4), np.ones(4), asked, 3, rng) == []


def test_no_essay_is_given_to_people_much_more_often_than_the_others() -> None:
    rng = np.random.default_rng(3)
    chosen = choose_human_pairs(np.linspace(0, 1, 40), np.full(40, 2.0), [], 40, rng)
    uses = Counter(i for pair in chosen for i in pair)
    assert max(uses.values()) <= 4


def test_judges_get_equal_shares_of_both_kinds_of_pair() -> None:
    pairs = [(i, i + 1) for i in range(9)]
    judges = assign_judges(pairs, ["a", "b"])
    assert Counter(judges) == {"a": 5, "b": 4}
    close, spread = judges[:5], judges[5:]
    assert set(close) == set(spread) == {"a", "b"}
    with pytest.raises(ValueError, match="no judges"):
        assign_judges(pairs, [])
