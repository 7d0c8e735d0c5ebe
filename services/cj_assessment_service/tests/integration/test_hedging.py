"""Hedged requests for the straggler tail on the real broker and database: a held answer is asked
again, the hedge decides the pair, and the held original changes nothing when it finally comes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from cj_assessment_service.adapters.tables import cj_hedge_calls, cj_pairs
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.entrypoints.periodic import TailHedger
from cj_assessment_service.testing.harness import (
    CJRuntime,
    batch_in_state,
    newest_batch,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentCompletedV1, CJCompletionReason
from common_core.events.llm import ComparisonWinner, LLMComparisonRequestV1, LLMComparisonResultV1
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration

BUDGET = 30
FLOOR_SECONDS = 1.0
HELD = 3  # the index of the request whose answer is held back
# Many top-ups for 16 essays; a straggler is hedged once outstanding for 1 s (the scripted judge
# answers in milliseconds, so its median is far below that floor); three hedges allowed.
SETTINGS = {
    "target_outstanding_comparisons": 8,
    "refit_every_answers": 2,
    "default_target_reliability": None,
    "hedge_max_share": 0.1,
    "hedge_latency_multiple": 3.0,
    "hedge_min_age_seconds": FLOOR_SECONDS,
    "hedge_check_interval_seconds": 0.2,
}


def _settings(database_url: str, bootstrap: str, **overrides: Any) -> Any:
    return make_settings(database_url, bootstrap, unique_prefix(), **{**SETTINGS, **overrides})


def _reversed(result: LLMComparisonResultV1) -> LLMComparisonResultV1:
    flipped = (
        ComparisonWinner.ESSAY_B
        if result.winner == ComparisonWinner.ESSAY_A
        else ComparisonWinner.ESSAY_A
    )
    return result.model_copy(update={"winner": flipped})


async def _pair_winner(service: CJRuntime, pair_id: str) -> str | None:
    async with service.sessions() as session:
        winner: str | None = (
            await session.execute(
                select(cj_pairs.c.winner).where(cj_pairs.c.id == uuid.UUID(pair_id))
            )
        ).scalar_one()
    return winner


async def _answered_copies(service: CJRuntime, pair_id: str) -> int:
    async with service.sessions() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(cj_hedge_calls)
                    .where(
                        cj_hedge_calls.c.pair_id == uuid.UUID(pair_id),
                        cj_hedge_calls.c.answered_at.is_not(None),
                    )
                )
            ).scalar_one()
        )


class TestHedgedStraggler:
    async def test_the_hedge_completes_the_batch_and_the_held_original_changes_nothing(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = _settings(database_url, kafka_bootstrap_servers)
        held: list[LLMComparisonRequestV1] = []

        def policy(request: LLMComparisonRequestV1, index: int) -> LLMComparisonResultV1 | None:
            if index == HELD:
                held.append(request)
                return None  # answered only after the batch completed, below
            return verdict(request)  # the hedge of the held pair too

        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy) as judge,
        ):
            await submit(
                service,
                request_envelope(settings, "hedged", essays(16), max_comparisons=BUDGET),
            )
            batch = await batch_in_state(service, "hedged", BatchState.COMPLETED, timeout=120)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
            (original,) = held
            pair_id = original.request_metadata["pair_id"]
            hedges = [
                r.data
                for r in judge.requests
                if r.data.request_metadata["pair_id"] == pair_id
                and r.data.request_id != original.request_id
            ]
            winner = await _pair_winner(service, pair_id)

            # The held original finally answers, with the opposite verdict.
            await judge.answer(judge.requests[HELD], _reversed(verdict(original)))
            await eventually(
                lambda: _answered_copies(service, pair_id),
                until=lambda answered: answered == 2,
                timeout=60,
                what="the held original recorded as answered",
            )
            after = await newest_batch(service, "hedged")
            winner_after = await _pair_winner(service, pair_id)
            events_after = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )

        (hedge,) = hedges
        assert (hedge.essay_a, hedge.essay_b) == (original.essay_a, original.essay_b)
        assert hedge.essay_instructions == original.essay_instructions
        hedge_winner = verdict(hedge).winner
        assert hedge_winner is not None
        assert winner == hedge_winner.value
        # The batch finished without the held answer, exactly on its budget.
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
        assert events[0].data.system_metadata.resource_usage.completed_comparisons == BUDGET
        assert batch.planned == batch.completed == BUDGET
        assert 1 <= batch.hedged <= 3
        assert len(judge.requests) == BUDGET + batch.hedged
        # The held original, answered afterwards, changed nothing.
        assert after == batch
        assert winner_after == winner
        assert len(events_after) == 1


class TestHedgingOff:
    async def test_a_share_of_zero_asks_nothing_extra_for_a_straggler(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = _settings(database_url, kafka_bootstrap_servers, hedge_max_share=0.0)

        def policy(request: LLMComparisonRequestV1, index: int) -> LLMComparisonResultV1 | None:
            return None if index == HELD else verdict(request)

        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy) as judge,
        ):
            await submit(
                service,
                request_envelope(settings, "unhedged", essays(16), max_comparisons=BUDGET),
            )
            tail = await eventually(
                lambda: newest_batch(service, "unhedged"),
                until=lambda b: b is not None and b.planned == BUDGET and b.pending == 1,
                timeout=120,
                what="the whole budget planned, one answer outstanding",
            )
            assert tail is not None
            # Past the threshold a hedging instance would ask again; this one does not.
            await eventually(
                lambda: _held_age(service, tail.id),
                until=lambda age: age > 2 * FLOOR_SECONDS,
                timeout=60,
                what="the straggler outstanding past the hedge threshold",
            )
            report = await service.worker("hedger", TailHedger).run_once()
            asked = len(judge.requests)
            await judge.answer(judge.requests[HELD], verdict(judge.requests[HELD].data))
            batch = await batch_in_state(service, "unhedged", BatchState.COMPLETED, timeout=60)

        assert report.hedged == 0
        assert asked == len(judge.requests) == BUDGET
        assert batch.hedged == 0
        assert batch.planned == batch.completed == BUDGET


async def _held_age(service: CJRuntime, batch_id: uuid.UUID) -> float:
    async with service.sessions() as session:
        age = (
            await session.execute(
                select(func.max(func.extract("epoch", func.now() - cj_pairs.c.requested_at))).where(
                    cj_pairs.c.batch_id == batch_id, cj_pairs.c.status == "PENDING"
                )
            )
        ).scalar_one()
    return float(age or 0.0)


class TestTwoInstances:
    async def test_two_hedgers_ask_a_straggler_again_only_once(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        """Both instances' tail hedgers pass every 0.2 s over the same batch: the batch row lock
        (SKIP LOCKED) and the stored hedge calls keep it to one hedge of the held pair."""
        settings = _settings(database_url, kafka_bootstrap_servers)

        def policy(request: LLMComparisonRequestV1, index: int) -> LLMComparisonResultV1 | None:
            return None if index == HELD else verdict(request)

        async with (
            running_service(settings) as first,
            running_service(settings) as second,
            judging(settings, first.producer, policy, key_by_request=True) as judge,
        ):
            await submit(
                first, request_envelope(settings, "two-hedgers", essays(16), max_comparisons=BUDGET)
            )
            batch = await batch_in_state(second, "two-hedgers", BatchState.COMPLETED, timeout=120)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        held_pair = judge.requests[HELD].data.request_metadata["pair_id"]
        asked = [r.data.request_metadata["pair_id"] for r in judge.requests]
        assert asked.count(held_pair) == 2
        assert max(asked.count(pair) for pair in set(asked)) == 2
        assert len(judge.requests) == BUDGET + batch.hedged
        assert batch.planned == batch.completed == BUDGET
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.BUDGET_EXHAUSTED
