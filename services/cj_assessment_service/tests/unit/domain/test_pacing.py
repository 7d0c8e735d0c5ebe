"""Pacing a batch's heavy computations by what they cost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cj_assessment_service.domain.pacing import answers_between_runs, planning_pace


class TestAnswersBetweenRuns:
    def test_an_unknown_cost_waits_the_minimum(self) -> None:
        assert answers_between_runs(minimum=8, answer_rate=500, cost_seconds=None, share=0.1) == 8

    def test_a_cheap_computation_with_a_slow_judge_waits_the_minimum(self) -> None:
        # 30 answers/s, 5 ms a check: every 2 answers would be 10 % of the time; 8 is the floor.
        assert answers_between_runs(minimum=8, answer_rate=30, cost_seconds=0.005, share=0.1) == 8

    def test_a_costly_computation_with_a_fast_judge_waits_longer(self) -> None:
        # 400 answers/s and 2 s a check: 8,000 answers (20 s) between checks keep them to 10 %.
        assert answers_between_runs(minimum=8, answer_rate=400, cost_seconds=2, share=0.1) == 8000

    @given(
        rate=st.floats(0.1, 5000),
        cost=st.floats(0.0001, 60),
        share=st.floats(0.01, 1),
    )
    def test_the_computation_never_takes_more_than_its_share(
        self, rate: float, cost: float, share: float
    ) -> None:
        step = answers_between_runs(minimum=1, answer_rate=rate, cost_seconds=cost, share=share)
        seconds_between_runs = step / rate
        assert cost <= share * seconds_between_runs * (1 + 1e-9)


class TestPlanningPace:
    def test_keeps_at_least_two_refill_steps_in_flight(self) -> None:
        pace = planning_pace(
            min_refill_step=8,
            min_outstanding=48,
            answer_rate=400,
            planning_cost_seconds=0.2,
            share=0.2,
        )
        assert pace.refill_step == 400
        assert pace.target_outstanding == 800

    def test_a_small_batch_keeps_the_configured_pace(self) -> None:
        pace = planning_pace(
            min_refill_step=8,
            min_outstanding=48,
            answer_rate=30,
            planning_cost_seconds=0.004,
            share=0.2,
        )
        assert (pace.refill_step, pace.target_outstanding) == (8, 48)
