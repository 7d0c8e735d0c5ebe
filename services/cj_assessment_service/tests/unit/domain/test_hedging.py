"""The hedge decision: which stragglers of a batch's tail are asked a second time."""

from __future__ import annotations

from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.hedging import HedgePolicy, OutstandingPair, choose_hedges

POLICY = HedgePolicy(max_share=0.02, latency_multiple=3.0, min_age_seconds=5.0)


def pair(age: float, *, hedged: bool = False) -> OutstandingPair:
    return OutstandingPair(uuid4(), age, hedged)


def choose(
    outstanding: list[OutstandingPair],
    *,
    policy: HedgePolicy = POLICY,
    budget: int = 1000,
    planned: int = 1000,
    hedged: int = 0,
    median: float | None = 1.0,
) -> list[UUID]:
    return choose_hedges(
        policy,
        budget=budget,
        planned=planned,
        hedged=hedged,
        outstanding=outstanding,
        median_latency=median,
    )


class TestThreshold:
    def test_a_multiple_of_the_median_answer_time(self) -> None:
        assert POLICY.threshold_seconds(2.5) == 7.5

    def test_never_below_the_floor(self) -> None:
        assert POLICY.threshold_seconds(0.2) == 5.0


class TestWhichPairsAreHedged:
    def test_only_pairs_outstanding_longer_than_the_threshold(self) -> None:
        slow, recent = pair(9.0), pair(4.0)
        assert choose([slow, recent], median=2.0) == [slow.pair_id]

    def test_nothing_before_the_whole_budget_is_planned(self) -> None:
        assert choose([pair(60.0)], planned=999) == []

    def test_nothing_before_any_answer_has_been_timed(self) -> None:
        assert choose([pair(60.0)], median=None) == []

    def test_a_pair_is_hedged_at_most_once(self) -> None:
        assert choose([pair(60.0, hedged=True)]) == []

    def test_the_oldest_stragglers_first_within_the_allowance(self) -> None:
        stragglers = [pair(float(age)) for age in (6, 30, 12, 20)]
        chosen = choose(stragglers, budget=100, hedged=0)  # 2 % of 100: two calls
        assert chosen == [stragglers[1].pair_id, stragglers[3].pair_id]

    def test_an_allowance_already_spent_hedges_nothing(self) -> None:
        assert choose([pair(60.0)], budget=100, hedged=2) == []

    def test_a_share_of_zero_turns_hedging_off(self) -> None:
        off = HedgePolicy(max_share=0.0, latency_multiple=3.0, min_age_seconds=5.0)
        assert not off.enabled
        assert off.allowance(1000) == 0
        assert choose([pair(60.0)], policy=off) == []


class TestCostBound:
    @given(
        budget=st.integers(1, 5000),
        share=st.floats(0.0, 0.5),
        hedged=st.integers(0, 200),
        ages=st.lists(st.floats(0.0, 100.0), max_size=60),
    )
    def test_never_more_than_the_share_of_the_budget_in_total(
        self, budget: int, share: float, hedged: int, ages: list[float]
    ) -> None:
        policy = HedgePolicy(max_share=share, latency_multiple=3.0, min_age_seconds=1.0)
        outstanding = [pair(age) for age in ages]
        chosen = choose(outstanding, policy=policy, budget=budget, planned=budget, hedged=hedged)
        assert hedged + len(chosen) <= max(hedged, share * budget)
        assert len(set(chosen)) == len(chosen)
