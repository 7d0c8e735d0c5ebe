"""Continuous planning and the reliability stop rule on the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from cj_assessment_service.adapters.tables import cj_pairs
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    batch_in_state,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    ScriptedJudge,
    ability,
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentCompletedV1, CJCompletionReason
from common_core.events.llm import ComparisonWinner, LLMComparisonRequestV1, LLMComparisonResultV1
from common_core.topics import Topic

pytestmark = pytest.mark.integration

# Small enough that a 16-essay batch needs many top-ups, large enough to keep a few in flight.
PLANNING = {
    "target_outstanding_comparisons": 8,
    "refit_every_answers": 2,
    "default_target_reliability": None,
}


def _settings(database_url: str, bootstrap: str, **overrides: Any) -> Any:
    return make_settings(database_url, bootstrap, unique_prefix(), **{**PLANNING, **overrides})


class TestStragglers:
    async def test_slow_answers_do_not_stop_the_other_pairs_being_planned_and_asked(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        """Three answers are held back (the stand-in's 10-second stragglers) until every other
        comparison of the budget has been requested: a planner that waited for them would
        never get there, and the test would time out instead of finishing."""
        settings = _settings(database_url, kafka_bootstrap_servers)
        budget = 60
        held: list[int] = []
        released = asyncio.Event()

        def policy(request: LLMComparisonRequestV1, index: int) -> LLMComparisonResultV1 | None:
            if index in (2, 5, 9):
                held.append(index)
                return None
            if index + 1 == budget:
                released.set()
            return verdict(request)

        async def release_stragglers(judge: ScriptedJudge) -> None:
            await released.wait()
            for index in held:
                await judge.answer(judge.requests[index], verdict(judge.requests[index].data))

        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy) as judge,
        ):
            releaser = asyncio.create_task(release_stragglers(judge))
            try:
                await submit(
                    service,
                    request_envelope(settings, "stragglers", essays(16), max_comparisons=budget),
                )
                batch = await batch_in_state(
                    service, "stragglers", BatchState.COMPLETED, timeout=120
                )
            finally:
                releaser.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await releaser
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert held == [2, 5, 9]
        assert len(judge.requests) == budget
        # Every other pair of the budget was asked while the stragglers were still unanswered.
        assert batch.planned == batch.completed == budget
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
        ordered = [(r.data.essay_a.essay_id, r.data.essay_b.essay_id) for r in judge.requests]
        assert len(set(ordered)) == budget
        assert batch.waves > 2  # the opening and several top-ups


class TestTwoInstances:
    async def test_two_instances_plan_no_pair_twice_and_spend_the_budget_exactly(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = _settings(database_url, kafka_bootstrap_servers)
        budget = 120
        async with (
            running_service(settings) as first,
            running_service(settings) as second,
            # Callbacks keyed by request spread one batch's answers over every partition, so
            # both instances record (and plan for) the same batch at the same time.
            judging(settings, first.producer, key_by_request=True) as judge,
        ):
            await submit(
                first, request_envelope(settings, "two", essays(24), max_comparisons=budget)
            )
            batch = await batch_in_state(second, "two", BatchState.COMPLETED, timeout=120)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
            async with first.sessions() as session:
                rows = (
                    await session.execute(
                        select(cj_pairs.c.essay_a, cj_pairs.c.essay_b).where(
                            cj_pairs.c.batch_id == batch.id
                        )
                    )
                ).all()
        assert batch.planned == batch.completed == budget == len(rows)
        assert len({(a, b) for a, b in rows}) == budget
        assert max(Counter(frozenset((a, b)) for a, b in rows).values()) <= 2
        assert len(judge.requests) == budget
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED


def _noisy_judge(seed: int, spread: float) -> Any:
    """A Bradley-Terry judge: the essay with the higher number wins with probability
    sigmoid(spread * (number difference)), drawn from a seeded generator."""
    draw = random.Random(seed)

    def policy(request: LLMComparisonRequestV1, _index: int) -> LLMComparisonResultV1:
        diff = ability(request.essay_a.essay_id) - ability(request.essay_b.essay_id)
        a_wins = draw.random() < 1.0 / (1.0 + math.exp(-spread * diff))
        return verdict(request).model_copy(
            update={"winner": ComparisonWinner.ESSAY_A if a_wins else ComparisonWinner.ESSAY_B}
        )

    return policy


class TestReliabilityTarget:
    async def test_a_reachable_target_stops_stable_before_the_budget(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        # Checks may take all of the batch's time (the pacing would otherwise space them by
        # their cost, which on a loaded machine lets this instant judge spend a tight budget
        # between two checks), and the budget is about twice what the target needs (and below
        # the 435 pairs of 30 essays, where the stop rule would not apply).
        settings = _settings(
            database_url, kafka_bootstrap_servers, refit_every_answers=4, reliability_check_share=1
        )
        budget = 400
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _noisy_judge(1, 0.25)),
        ):
            await submit(
                service,
                request_envelope(
                    settings,
                    "reachable",
                    essays(30),
                    max_comparisons=budget,
                    target_reliability=0.8,
                ),
            )
            batch = await batch_in_state(service, "reachable", BatchState.COMPLETED, timeout=120)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        (completed,) = events
        statistics = completed.data.statistics
        assert completed.data.completion_reason == CJCompletionReason.STABLE
        assert batch.completed < budget
        assert statistics.stop_rule_reliability == "posterior_reliability"
        assert statistics.target_reliability == 0.8
        assert statistics.posterior_reliability is not None
        assert statistics.posterior_reliability >= 0.8
        assert statistics.comparisons_per_essay >= settings.min_comparisons_per_essay_before_stop

    async def test_an_unreachable_target_spends_the_budget(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = _settings(database_url, kafka_bootstrap_servers, refit_every_answers=4)
        budget = 150
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _noisy_judge(2, 0.25)),
        ):
            await submit(
                service,
                request_envelope(
                    settings,
                    "unreachable",
                    essays(30),
                    max_comparisons=budget,
                    target_reliability=0.999,
                ),
            )
            batch = await batch_in_state(service, "unreachable", BatchState.COMPLETED, timeout=120)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        (completed,) = events
        assert completed.data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
        assert batch.planned == batch.completed == budget
        assert completed.data.statistics.stop_rule_reliability == "posterior_reliability"
        assert completed.data.statistics.posterior_reliability is not None
        assert completed.data.statistics.posterior_reliability < 0.999
