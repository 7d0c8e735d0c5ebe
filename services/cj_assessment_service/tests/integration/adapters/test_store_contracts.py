"""One contract suite for the stores: the PostgreSQL unit of work and the unit tests' fake agree."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    NewHedge,
    NewPair,
    PairAnswer,
    PairReissue,
    RequestSettings,
    Transactions,
    Verdict,
)
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.entrypoints.runtime import SERVICE
from cj_assessment_service.testing.fakes import FakeTransactions
from cj_assessment_service.tests.support import batch_record, make_settings, unique_prefix
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import LLMConfig, LLMMode
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kernel import prepare_infrastructure
from common_core.runtime.unit_of_work import SessionTransactions

pytestmark = pytest.mark.integration


@pytest.fixture(params=["fake", "postgres"])
async def transaction(
    request: pytest.FixtureRequest, database_url: str, kafka_bootstrap_servers: str
) -> AsyncIterator[Transactions]:
    """Units of work of one kind (the fake keeps its state across them)."""
    if request.param == "fake":
        yield FakeTransactions()
        return
    settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
    await prepare_infrastructure(SERVICE, settings)
    engine = create_engine(settings.service_database_url, pool_size=2)
    sessions = create_session_factory(engine)
    try:
        yield SessionTransactions(sessions, PostgresUnitOfWork)
    finally:
        await engine.dispose()


def _batch(
    entity_ref: str,
    *,
    last_activity_at: datetime | None = None,
    threshold_reached_at: datetime | None = None,
) -> BatchRecord:
    batch = batch_record(entity_ref=entity_ref, threshold_reached_at=threshold_reached_at)
    return replace(batch, last_activity_at=last_activity_at or batch.last_activity_at)


ESSAYS = [EssayRecord(i, f"e{i}", f"text {i}") for i in range(3)]


class TestRepositoryContract:
    async def test_request_claims_are_idempotent(self, transaction: Transactions) -> None:
        event_id = uuid.uuid4()
        async with transaction() as uow:
            assert await uow.batches.claim_request(event_id) is True
        async with transaction() as uow:
            assert await uow.batches.claim_request(event_id) is False

    async def test_batches_are_found_by_live_ref_and_updated(
        self, transaction: Transactions
    ) -> None:
        ref = f"ref-{uuid.uuid4().hex}"
        batch = _batch(ref)
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, ESSAYS)
        async with transaction() as uow:
            assert await uow.batches.live_id(ref) == batch.id
            await uow.batches.record_answers(replace(batch, completed=2))
            await uow.batches.mark_completed(
                batch.id,
                reason=CJCompletionReason.BUDGET_EXHAUSTED,
                partial_scoring_triggered=False,
                result={"rankings": []},
                at=datetime.now(UTC),
            )
        async with transaction() as uow:
            assert await uow.batches.live_id(ref) is None
            stored = await uow.batches.get(batch.id)
            newest = await uow.batches.newest(ref)
            essays = await uow.essays.get(batch.id)
            some = await uow.essays.get(batch.id, positions=[2, 0, 2])
        assert stored is not None
        assert (stored.state, stored.completed) == (BatchState.COMPLETED, 2)
        assert newest is not None
        assert newest.id == batch.id
        assert essays == ESSAYS
        assert some == [ESSAYS[0], ESSAYS[2]]

    async def test_pairs_are_found_answered_and_reissued(self, transaction: Transactions) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        pairs = [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in [(0, 1), (1, 2), (2, 0)]]
        now = datetime.now(UTC)
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, ESSAYS)
            await uow.pairs.add(batch.id, 1, pairs)
        fresh = uuid.uuid4()
        async with transaction() as uow:
            owners = await uow.batches.lock_for_requests([p.request_id for p in pairs] + [fresh])
            assert set(owners) == {batch.id}
            assert await uow.batches.lock_for_requests([uuid.uuid4()]) == {}
            await uow.pairs.save_answers(
                [PairAnswer(pairs[0].id, PairStatus.COMPLETED, "essay_a", None)], now
            )
            await uow.pairs.reissue([PairReissue(pairs[1].id, fresh)], now)
        async with transaction() as uow:
            by_request = await uow.pairs.by_request([pairs[0].request_id, fresh])
            everything = await uow.pairs.outcomes(batch.id)
            locked = await uow.batches.lock_for_requests([fresh])
        assert by_request[pairs[0].request_id].status == PairStatus.COMPLETED
        assert by_request[pairs[0].request_id].winner == "essay_a"
        assert by_request[fresh].attempts == 2
        assert by_request[fresh].status == PairStatus.PENDING
        assert len(everything) == 3
        outcomes = zip(
            everything.essay_a.tolist(),
            everything.essay_b.tolist(),
            everything.verdict.tolist(),
            strict=True,
        )
        assert sorted(outcomes) == [
            (0, 1, Verdict.A_WON),
            (1, 2, Verdict.PENDING),
            (2, 0, Verdict.PENDING),
        ]
        assert everything.answered(3).a_won.tolist() == [True]
        assert sorted(everything.asked()) == [(0, 1), (1, 2), (2, 0)]
        assert set(locked) == {batch.id}

    async def test_hedged_pairs_are_found_under_both_request_ids(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        pairs = [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in [(0, 1), (1, 2), (2, 0)]]
        hedge = NewHedge(pairs[1].id, pairs[1].request_id, uuid.uuid4())
        batch_mode = replace(
            _batch(f"ref-{uuid.uuid4().hex}"),
            request_settings=RequestSettings(llm_config=LLMConfig(mode=LLMMode.BATCH)),
        )
        now = datetime.now(UTC)
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, ESSAYS)
            await uow.pairs.add(batch.id, 1, pairs)
            await uow.batches.add(batch_mode)
            await uow.essays.add(batch_mode.id, ESSAYS)
        async with transaction() as uow:
            candidates = await uow.batches.lock_hedge_candidates(max_share=0.5, limit=1000)
            await uow.pairs.save_answers(
                [PairAnswer(pairs[0].id, PairStatus.COMPLETED, "essay_a", None)],
                now + timedelta(seconds=2),
            )
            await uow.hedges.add(batch.id, [hedge], now)
            await uow.batches.set_hedged(batch.id, 1)
        async with transaction() as uow:
            after = await uow.batches.lock_hedge_candidates(max_share=0.5, limit=1000)
            owners = await uow.batches.lock_for_requests([hedge.hedge_request_id])
            by_request = await uow.pairs.by_request([hedge.hedge_request_id, pairs[1].request_id])
            pending, hedged, median = await uow.pairs.outstanding(batch.id)
            calls = await uow.hedges.calls([hedge.hedge_request_id])
            await uow.hedges.mark_answered([hedge.hedge_request_id], now)
        async with transaction() as uow:
            answered = await uow.hedges.calls([pairs[1].request_id])
        assert batch.id in {b.id for b in candidates}
        assert batch_mode.id not in {b.id for b in candidates}  # answers come within hours
        assert batch.id not in {b.id for b in after}  # its one hedge (half of 3) is spent
        assert set(owners) == {batch.id}
        assert by_request[hedge.hedge_request_id].id == pairs[1].id
        assert by_request[hedge.hedge_request_id].request_id == pairs[1].request_id
        assert by_request[pairs[1].request_id].id == pairs[1].id
        assert {p.id for p in pending} == {pairs[1].id, pairs[2].id}
        assert hedged == {pairs[1].id}
        assert median is not None
        assert {(c.request_id, c.hedge, c.answered) for c in calls[pairs[1].id]} == {
            (pairs[1].request_id, False, False),
            (hedge.hedge_request_id, True, False),
        }
        assert {(c.request_id, c.answered) for c in answered[pairs[1].id]} == {
            (pairs[1].request_id, False),
            (hedge.hedge_request_id, True),
        }

    async def test_stale_batches_are_those_idle_or_past_their_grace(
        self, transaction: Transactions
    ) -> None:
        now = datetime.now(UTC)
        idle = _batch(f"idle-{uuid.uuid4().hex}", last_activity_at=now - timedelta(hours=2))
        graced = _batch(f"grace-{uuid.uuid4().hex}", threshold_reached_at=now - timedelta(hours=2))
        busy = _batch(f"busy-{uuid.uuid4().hex}")
        batch_mode = RequestSettings(llm_config=LLMConfig(mode=LLMMode.BATCH))
        # Idle as long, but waiting on a provider batch: stale only past the batch-mode timeout.
        waiting = replace(_batch(f"waiting-{uuid.uuid4().hex}"), request_settings=batch_mode)
        forgotten = replace(_batch(f"forgotten-{uuid.uuid4().hex}"), request_settings=batch_mode)
        async with transaction() as uow:
            for batch in (idle, graced, busy, waiting, forgotten):
                await uow.batches.add(batch)
        async with transaction() as uow:
            # PostgreSQL stamps last activity on insert; age it explicitly for both kinds.
            for batch, idle_for in ((idle, 2), (waiting, 2), (forgotten, 30)):
                aged = replace(batch, last_activity_at=now - timedelta(hours=idle_for))
                await uow.batches.record_answers(aged)
        async with transaction() as uow:
            stale = await uow.batches.lock_stale(
                inactive_since=now - timedelta(hours=1),
                batch_mode_inactive_since=now - timedelta(hours=25),
                threshold_since=now - timedelta(hours=1),
                limit=100,
            )
        ids = {b.id for b in stale}
        assert {idle.id, graced.id, forgotten.id} <= ids
        assert busy.id not in ids
        assert waiting.id not in ids
