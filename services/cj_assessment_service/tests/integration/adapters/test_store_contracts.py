"""One contract suite for the repository: the PostgreSQL adapter and the unit tests' fake agree."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cj_assessment_service.adapters.postgres import repository_transaction
from cj_assessment_service.application.ports import (
    BatchRecord,
    BatchRepository,
    EssayRecord,
    NewHedge,
    NewPair,
    PairAnswer,
    PairReissue,
    RequestSettings,
    Verdict,
)
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.entrypoints.runtime import SERVICE
from cj_assessment_service.testing.fakes import FakeBatchRepository
from cj_assessment_service.tests.support import batch_record, make_settings, unique_prefix
from common_core.events.llm import LLMConfig, LLMMode
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.kernel import prepare_infrastructure

pytestmark = pytest.mark.integration

Transaction = Callable[[], AbstractAsyncContextManager[BatchRepository]]


@pytest.fixture(params=["fake", "postgres"])
async def transaction(
    request: pytest.FixtureRequest, database_url: str, kafka_bootstrap_servers: str
) -> AsyncIterator[Transaction]:
    """A factory of transactions on one repository kind (the fake keeps state across them)."""
    if request.param == "fake":
        fake = FakeBatchRepository()

        @asynccontextmanager
        async def fake_transaction() -> AsyncIterator[BatchRepository]:
            yield fake
            fake.committed()

        yield fake_transaction
        return
    settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
    await prepare_infrastructure(SERVICE, settings)
    engine = create_engine(settings.service_database_url, pool_size=2)
    sessions = create_session_factory(engine)
    try:
        yield lambda: repository_transaction(sessions)
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
    async def test_request_claims_are_idempotent(self, transaction: Transaction) -> None:
        event_id = uuid.uuid4()
        async with transaction() as repo:
            assert await repo.claim_request(event_id) is True
        async with transaction() as repo:
            assert await repo.claim_request(event_id) is False

    async def test_batches_are_found_by_live_ref_and_updated(
        self, transaction: Transaction
    ) -> None:
        ref = f"ref-{uuid.uuid4().hex}"
        batch = _batch(ref)
        async with transaction() as repo:
            await repo.add_batch(batch, ESSAYS)
        async with transaction() as repo:
            assert await repo.live_batch_id(ref) == batch.id
            await repo.update_batch(batch.id, completed=2, state=BatchState.COMPLETED)
        async with transaction() as repo:
            assert await repo.live_batch_id(ref) is None
            stored = await repo.get_batch(batch.id)
            newest = await repo.newest_batch(ref)
            essays = await repo.essays(batch.id)
            some = await repo.essays(batch.id, positions=[2, 0, 2])
        assert stored is not None
        assert (stored.state, stored.completed) == (BatchState.COMPLETED, 2)
        assert newest is not None
        assert newest.id == batch.id
        assert essays == ESSAYS
        assert some == [ESSAYS[0], ESSAYS[2]]

    async def test_pairs_are_found_answered_and_reissued(self, transaction: Transaction) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        pairs = [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in [(0, 1), (1, 2), (2, 0)]]
        now = datetime.now(UTC)
        async with transaction() as repo:
            await repo.add_batch(batch, ESSAYS)
            await repo.add_pairs(batch.id, 1, pairs)
        fresh = uuid.uuid4()
        async with transaction() as repo:
            owners = await repo.lock_batches_for_requests([p.request_id for p in pairs] + [fresh])
            assert set(owners) == {batch.id}
            assert await repo.lock_batches_for_requests([uuid.uuid4()]) == {}
            await repo.save_answers(
                [PairAnswer(pairs[0].id, PairStatus.COMPLETED, "essay_a", None)], now
            )
            await repo.reissue_pairs([PairReissue(pairs[1].id, fresh)], now)
        async with transaction() as repo:
            by_request = await repo.pairs_by_request([pairs[0].request_id, fresh])
            everything = await repo.pair_outcomes(batch.id)
            locked = await repo.lock_batches_for_requests([fresh])
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
        self, transaction: Transaction
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        pairs = [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in [(0, 1), (1, 2), (2, 0)]]
        hedge = NewHedge(pairs[1].id, pairs[1].request_id, uuid.uuid4())
        batch_mode = replace(
            _batch(f"ref-{uuid.uuid4().hex}"),
            request_settings=RequestSettings(llm_config=LLMConfig(mode=LLMMode.BATCH)),
        )
        now = datetime.now(UTC)
        async with transaction() as repo:
            await repo.add_batch(batch, ESSAYS)
            await repo.add_pairs(batch.id, 1, pairs)
            await repo.add_batch(batch_mode, ESSAYS)
        async with transaction() as repo:
            candidates = await repo.lock_hedge_candidates(max_share=0.5, limit=1000)
            await repo.save_answers(
                [PairAnswer(pairs[0].id, PairStatus.COMPLETED, "essay_a", None)],
                now + timedelta(seconds=2),
            )
            await repo.add_hedges(batch.id, [hedge], now)
            await repo.update_batch(batch.id, hedged=1)
        async with transaction() as repo:
            after = await repo.lock_hedge_candidates(max_share=0.5, limit=1000)
            owners = await repo.lock_batches_for_requests([hedge.hedge_request_id])
            by_request = await repo.pairs_by_request([hedge.hedge_request_id, pairs[1].request_id])
            pending, hedged, median = await repo.outstanding_pairs(batch.id)
            calls = await repo.hedge_calls([hedge.hedge_request_id])
            await repo.mark_hedge_calls_answered([hedge.hedge_request_id], now)
        async with transaction() as repo:
            answered = await repo.hedge_calls([pairs[1].request_id])
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
        self, transaction: Transaction
    ) -> None:
        now = datetime.now(UTC)
        idle = _batch(f"idle-{uuid.uuid4().hex}", last_activity_at=now - timedelta(hours=2))
        graced = _batch(f"grace-{uuid.uuid4().hex}", threshold_reached_at=now - timedelta(hours=2))
        busy = _batch(f"busy-{uuid.uuid4().hex}")
        batch_mode = RequestSettings(llm_config=LLMConfig(mode=LLMMode.BATCH))
        # Idle as long, but waiting on a provider batch: stale only past the batch-mode timeout.
        waiting = replace(_batch(f"waiting-{uuid.uuid4().hex}"), request_settings=batch_mode)
        forgotten = replace(_batch(f"forgotten-{uuid.uuid4().hex}"), request_settings=batch_mode)
        async with transaction() as repo:
            for batch in (idle, graced, busy, waiting, forgotten):
                await repo.add_batch(batch, [])
        async with transaction() as repo:
            # PostgreSQL stamps last activity on insert; age it explicitly for both kinds.
            await repo.update_batch(idle.id, last_activity_at=now - timedelta(hours=2))
            await repo.update_batch(waiting.id, last_activity_at=now - timedelta(hours=2))
            await repo.update_batch(forgotten.id, last_activity_at=now - timedelta(hours=30))
        async with transaction() as repo:
            stale = await repo.lock_stale_batches(
                inactive_since=now - timedelta(hours=1),
                batch_mode_inactive_since=now - timedelta(hours=25),
                threshold_since=now - timedelta(hours=1),
                limit=100,
            )
        ids = {b.id for b in stale}
        assert {idle.id, graced.id, forgotten.id} <= ids
        assert busy.id not in ids
        assert waiting.id not in ids
