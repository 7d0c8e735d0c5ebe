"""One contract suite for the stores: the PostgreSQL unit of work and the unit tests' fake agree."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.ports import (
    BatchRecord,
    ErasureRecord,
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
from cj_assessment_service.testing.requests import batch_record, make_settings, unique_prefix
from common_core.events.cj import (
    CJCompletionReason,
    EssayToProcess,
    HumanJudge,
    HumanJudgingRequest,
)
from common_core.events.envelope import new_event
from common_core.events.llm import (
    ComparisonEssay,
    LLMComparisonRequestV1,
    LLMConfig,
    LLMMode,
)
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


def _answer_fields(batch: BatchRecord) -> tuple[object, ...]:
    return (
        batch.completed,
        batch.failed,
        batch.prompt_tokens,
        batch.completion_tokens,
        batch.cached_prompt_tokens,
        batch.cache_write_tokens,
        batch.estimated_cost_usd,
        batch.unpriced_answers,
        batch.judges,
        batch.last_activity_at,
        batch.threshold_reached_at,
    )


ESSAYS = [EssayRecord(i, f"e{i}", f"text {i}") for i in range(3)]


class TestUnitOfWork:
    async def test_a_block_that_raises_leaves_nothing_and_runs_no_after_commit_action(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        ran: list[str] = []

        async def add_then_fail() -> None:
            async with transaction() as uow:
                await uow.batches.add(batch)
                uow.after_commit(lambda: ran.append("rolled back"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await add_then_fail()
        async with transaction() as uow:
            assert await uow.batches.get(batch.id) is None
            uow.after_commit(lambda: ran.append("committed"))
            assert ran == []
        assert ran == ["committed"]


class TestBatches:
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

    async def test_a_batch_records_its_waves_answers_hedges_and_failure(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        now = datetime.now(UTC)
        answered = replace(
            batch,
            completed=2,
            failed=1,
            prompt_tokens=300,
            completion_tokens=20,
            cached_prompt_tokens=100,
            cache_write_tokens=10,
            estimated_cost_usd=0.25,
            unpriced_answers=1,
            judges=[{"provider": "openai", "model": "m", "prompt_version": None, "comparisons": 2}],
            last_activity_at=now,
            threshold_reached_at=now,
        )
        error = {"code": "stuck_batch", "message": "no activity"}
        async with transaction() as uow:
            await uow.batches.add(batch)
        async with transaction() as uow:
            locked = await uow.batches.lock(batch.id)
            await uow.batches.record_wave(
                batch.id, state=BatchState.WAITING_CALLBACKS, planned=9, waves=2
            )
            await uow.batches.record_answers(answered)
            await uow.batches.set_hedged(batch.id, 2)
            during = await uow.batches.get(batch.id)
        async with transaction() as uow:
            await uow.batches.mark_failed(
                batch.id, state=BatchState.CANCELLED, error_detail=error, at=now
            )
        async with transaction() as uow:
            failed = await uow.batches.get(batch.id)
            assert await uow.batches.lock(uuid.uuid4()) is None
        assert locked is not None
        assert locked.id == batch.id
        assert during is not None
        assert (during.state, during.planned, during.waves, during.hedged) == (
            BatchState.WAITING_CALLBACKS,
            9,
            2,
            2,
        )
        assert _answer_fields(during) == _answer_fields(answered)
        assert failed is not None
        assert (failed.state, failed.error_detail) == (BatchState.CANCELLED, error)
        assert failed.finished_at == now

    async def test_a_completed_batch_keeps_its_reason_and_result(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        now = datetime.now(UTC)
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.batches.mark_completed(
                batch.id,
                reason=CJCompletionReason.STABLE,
                partial_scoring_triggered=True,
                result={"rankings": [{"essay_id": "e0"}]},
                at=now,
            )
        async with transaction() as uow:
            stored = await uow.batches.get(batch.id)
        assert stored is not None
        assert (stored.state, stored.completion_reason) == (
            BatchState.COMPLETED,
            CJCompletionReason.STABLE.value,
        )
        assert stored.partial_scoring_triggered
        assert stored.result == {"rankings": [{"essay_id": "e0"}]}
        assert stored.finished_at == now

    async def test_live_batches_are_counted_per_state_with_their_pending_comparisons(
        self, transaction: Transactions
    ) -> None:
        async with transaction() as uow:
            before, pending_before = await uow.batches.count_live()
        waiting = replace(_batch(f"ref-{uuid.uuid4().hex}"), planned=5, completed=1, failed=1)
        finished = _batch(f"ref-{uuid.uuid4().hex}")
        async with transaction() as uow:
            await uow.batches.add(waiting)
            await uow.batches.add(finished)
            await uow.batches.mark_failed(
                finished.id, state=BatchState.FAILED, error_detail={}, at=datetime.now(UTC)
            )
        async with transaction() as uow:
            after, pending_after = await uow.batches.count_live()
        waiting_state, failed_state = BatchState.WAITING_CALLBACKS.value, BatchState.FAILED.value
        assert after[waiting_state] == before.get(waiting_state, 0) + 1
        assert after[failed_state] == before.get(failed_state, 0) + 1
        assert pending_after == pending_before + 3


class TestEssays:
    async def test_essays_are_counted_and_read_for_scoring_in_position_order(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        essays = [*ESSAYS, EssayRecord(3, "anchor", "anchor text", anchor_grade="B")]
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, list(reversed(essays)))
        async with transaction() as uow:
            count = await uow.essays.count(batch.id)
            scored = await uow.essays.scored(batch.id)
            none = await uow.essays.get(uuid.uuid4())
        assert count == 4
        assert [(e.essay_id, e.anchor_grade) for e in scored] == [
            ("e0", None),
            ("e1", None),
            ("e2", None),
            ("anchor", "B"),
        ]
        assert none == []


class TestPairs:
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

    async def test_a_verdict_probability_comes_back_with_the_outcomes(
        self, transaction: Transactions
    ) -> None:
        batch = _batch(f"ref-{uuid.uuid4().hex}")
        pairs = [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in [(0, 1), (1, 2), (2, 0)]]
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, ESSAYS)
            await uow.pairs.add(batch.id, 1, pairs)
        async with transaction() as uow:
            hard_only = await uow.pairs.outcomes(batch.id)
            await uow.pairs.save_answers(
                [
                    PairAnswer(pairs[0].id, PairStatus.COMPLETED, "essay_b", None, 0.25),
                    PairAnswer(pairs[2].id, PairStatus.COMPLETED, "essay_a", None),
                ],
                datetime.now(UTC),
            )
        async with transaction() as uow:
            everything = await uow.pairs.outcomes(batch.id)
        assert hard_only.probability_a is None
        assert everything.probability_a is not None
        by_pair = dict(zip(everything.asked(), everything.probability_a.tolist(), strict=True))
        assert by_pair[(0, 1)] == 0.25
        assert np.isnan(by_pair[(2, 0)])  # a hard verdict
        assert np.isnan(by_pair[(1, 2)])  # not answered
        assert sorted(everything.answered(3).outcomes().tolist()) == [0.25, 1.0]


class TestHedges:
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


class TestStaleBatches:
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


class TestEssaySets:
    async def test_a_sealed_set_reads_back_in_upload_order_until_it_expires(
        self, transaction: Transactions
    ) -> None:
        now = datetime.now(UTC)
        sealed, unsealed = uuid.uuid4(), uuid.uuid4()
        async with transaction() as uow:
            for set_id in (sealed, unsealed):
                await uow.essay_sets.create(set_id, now, now + timedelta(hours=1))
            await uow.essay_sets.add_essays(sealed, ESSAYS[:2])
            await uow.essay_sets.add_essays(sealed, ESSAYS[2:])
            await uow.essay_sets.seal(sealed, len(ESSAYS), "ab" * 32)
            await uow.essay_sets.add_essays(unsealed, ESSAYS)
        async with transaction() as uow:
            found = await uow.essay_sets.get(sealed, now)
            expired = await uow.essay_sets.get(sealed, now + timedelta(hours=2))
            not_sealed = await uow.essay_sets.get(unsealed, now)
            unknown = await uow.essay_sets.get(uuid.uuid4(), now)
        assert found is not None
        assert (found.id, found.content_sha256, found.essays) == (sealed, "ab" * 32, ESSAYS)
        assert found.expires_at == now + timedelta(hours=1)
        assert (expired, not_sealed, unknown) == (None, None, None)

    async def test_expired_sets_are_deleted_oldest_first_up_to_the_limit(
        self, transaction: Transactions
    ) -> None:
        # Far in the past, so no set of another test is older.
        long_ago = datetime(2001, 1, 1, tzinfo=UTC)
        oldest, older, live = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        async with transaction() as uow:
            for set_id, expires_at in (
                (older, long_ago + timedelta(hours=2)),
                (oldest, long_ago + timedelta(hours=1)),
                (live, datetime.now(UTC) + timedelta(hours=1)),
            ):
                await uow.essay_sets.create(set_id, long_ago, expires_at)
                await uow.essay_sets.add_essays(set_id, ESSAYS)
                await uow.essay_sets.seal(set_id, len(ESSAYS), "ab" * 32)
        async with transaction() as uow:
            first = await uow.essay_sets.delete_expired(long_ago + timedelta(hours=3), 1)
        async with transaction() as uow:
            oldest_left = await uow.essay_sets.get(oldest, long_ago)
            older_left = await uow.essay_sets.get(older, long_ago)
            second = await uow.essay_sets.delete_expired(long_ago + timedelta(hours=3), 10)
            live_left = await uow.essay_sets.get(live, datetime.now(UTC))
        assert (first, second) == (1, 1)
        assert oldest_left is None
        assert older_left is not None
        assert live_left is not None


class TestTextLifecycle:
    async def test_only_batches_finished_before_the_cutoff_are_purged_and_only_once(
        self, transaction: Transactions
    ) -> None:
        # Far in the past, so no batch of another test finished earlier.
        long_ago = datetime(2001, 1, 1, tzinfo=UTC)
        old = batch_record(state=BatchState.COMPLETED, finished_at=long_ago)
        recent = batch_record(state=BatchState.CANCELLED, finished_at=long_ago + timedelta(hours=2))
        live = batch_record()
        async with transaction() as uow:
            for batch in (old, recent, live):
                await uow.batches.add(batch)
                await uow.essays.add(batch.id, ESSAYS)
        cutoff = long_ago + timedelta(hours=1)
        async with transaction() as uow:
            locked = await uow.lifecycle.lock_purgeable(cutoff, 10)
            blanked = await uow.lifecycle.blank_texts(locked, cutoff)
        async with transaction() as uow:
            again = await uow.lifecycle.lock_purgeable(cutoff, 10)
            repeated = await uow.lifecycle.blank_texts([old.id], cutoff)
            purged = await uow.batches.get(old.id)
            texts = {
                batch.id: [e.text_content for e in await uow.essays.get(batch.id)]
                for batch in (old, recent, live)
            }
            scored = await uow.essays.scored(old.id)
        assert (locked, blanked, again, repeated) == ([old.id], 3, [], 0)
        assert purged is not None
        assert purged.texts_purged_at is not None
        assert texts == {old.id: ["", "", ""], recent.id: _texts(), live.id: _texts()}
        assert [s.essay_id for s in scored] == ["e0", "e1", "e2"]

    async def test_a_batchs_outbox_rows_of_a_topic_are_deleted_and_erasures_recorded(
        self, transaction: Transactions
    ) -> None:
        batch, other = batch_record(), batch_record()
        topic = f"t{uuid.uuid4().hex}.requests"
        async with transaction() as uow:
            for key, on in ((batch.id, topic), (other.id, topic), (batch.id, f"{topic}.other")):
                uow.stage_event(
                    on,
                    new_event(
                        on,
                        EssayToProcess(essay_id="e0", text_content="text"),
                        source_service="test",
                        correlation_id=uuid.uuid4(),
                    ),
                    key=str(key),
                )
            for owner in (batch, other):  # requests keyed by their own id name their batch
                request = LLMComparisonRequestV1(
                    request_id=uuid.uuid4(),
                    essay_a=ComparisonEssay(essay_id="e0", text_content="text a"),
                    essay_b=ComparisonEssay(essay_id="e1", text_content="text b"),
                    callback_topic=f"{topic}.callbacks",
                    request_metadata={"batch_id": str(owner.id), "pair_id": str(uuid.uuid4())},
                    callback_key=str(owner.id),
                )
                uow.stage_event(
                    topic,
                    new_event(topic, request, source_service="test", correlation_id=uuid.uuid4()),
                    key=str(request.request_id),
                )
        async with transaction() as uow:
            deleted = await uow.lifecycle.delete_outbox_rows(topic, batch.id)
            before = await uow.lifecycle.erased_before(batch.id)
            await uow.lifecycle.record_erasure(
                ErasureRecord(
                    uuid.uuid4(), batch.id, datetime.now(UTC), "ops", batch.state, {"n": deleted}
                )
            )
        async with transaction() as uow:
            again = await uow.lifecycle.delete_outbox_rows(topic, batch.id)
            others = await uow.lifecycle.delete_outbox_rows(topic, other.id)
            after = await uow.lifecycle.erased_before(batch.id)
        assert (deleted, again, others) == (2, 0, 2)
        assert (before, after) == (False, True)

    async def test_an_erased_essay_set_goes_with_its_essays_at_once(
        self, transaction: Transactions
    ) -> None:
        now = datetime.now(UTC)
        set_id = uuid.uuid4()
        async with transaction() as uow:
            await uow.essay_sets.create(set_id, now, now + timedelta(hours=1))
            await uow.essay_sets.add_essays(set_id, ESSAYS)
            await uow.essay_sets.seal(set_id, len(ESSAYS), "ab" * 32)
        async with transaction() as uow:
            erased = await uow.essay_sets.erase(set_id)
        async with transaction() as uow:
            again = await uow.essay_sets.erase(set_id)
            left = await uow.essay_sets.get(set_id, now)
        assert (erased, again, left) == ((1, 3), (0, 0), None)


def _texts() -> list[str]:
    return [e.text_content for e in ESSAYS]


def _people(deadline: datetime) -> HumanJudgingRequest:
    return HumanJudgingRequest(
        judges=[HumanJudge(judge_id="t1", display_name="T One")],
        share=0.2,
        deadline=deadline,
    )


class TestPeoplesPairs:
    async def test_peoples_pairs_are_stored_read_with_their_judges_and_released(
        self, transaction: Transactions
    ) -> None:
        past = datetime.now(UTC) - timedelta(seconds=5)
        batch = replace(
            _batch(f"ref-{uuid.uuid4().hex}"), human_judging=_people(past), human_deadline=past
        )
        # One wave's pairs are read in id order: sorted ids make that the order of this list.
        ai = sorted(
            [NewPair(uuid.uuid4(), 0, 1, uuid.uuid4()), NewPair(uuid.uuid4(), 1, 2, uuid.uuid4())],
            key=lambda pair: pair.id,
        )
        people = [
            NewPair(uuid.uuid4(), a, b, uuid.uuid4(), judge_kind="human", judge_id="t1")
            for a, b in [(1, 0), (2, 1), (0, 2)]
        ]
        now = datetime.now(UTC)
        async with transaction() as uow:
            await uow.batches.add(batch)
            await uow.essays.add(batch.id, ESSAYS)
            await uow.pairs.add(batch.id, 1, ai)
            await uow.pairs.add(batch.id, 2, people)
            await uow.batches.record_human_plan(batch.id, planned=5, human_planned=3)
        async with transaction() as uow:
            await uow.pairs.save_answers(
                [
                    PairAnswer(ai[0].id, PairStatus.COMPLETED, "essay_a", None, judge_id="o:m"),
                    PairAnswer(people[0].id, PairStatus.COMPLETED, "essay_b", None),
                ],
                now,
            )
            await uow.batches.record_answers(replace(batch, completed=2, human_answered=1))
        async with transaction() as uow:
            found = await uow.pairs.by_request([people[0].request_id])
            outstanding, _, _ = await uow.pairs.outstanding(batch.id)
            read = await uow.pairs.outcomes(batch.id, with_judges=True)
            plain = await uow.pairs.outcomes(batch.id)
            due = await uow.batches.lock_human_deadline_due(datetime.now(UTC), 10)
        assert (found[people[0].request_id].judge_kind, found[people[0].request_id].judge_id) == (
            "human",
            "t1",
        )
        assert [p.id for p in outstanding] == [ai[1].id]  # people's pairs are never hedged
        assert plain.human is None
        assert read.human is not None
        assert read.human.tolist() == [False, False, True, True, True]
        assert read.judge is not None
        assert read.judge.tolist() == ["o:m", "", "t1", "t1", "t1"]
        judged = read.answered_judges()
        assert judged is not None
        assert (judged[0].tolist(), judged[1]) == ([False, True], ["o:m", "t1"])
        assert [b.id for b in due if b.id == batch.id] == [batch.id]

        async with transaction() as uow:
            released = await uow.pairs.release_human_pairs(batch.id, datetime.now(UTC))
            locked = await uow.batches.lock(batch.id)
            assert locked is not None
            await uow.batches.record_release(
                replace(locked, planned=locked.planned - released, human_released=released)
            )
        async with transaction() as uow:
            after = await uow.batches.get(batch.id)
            read = await uow.pairs.outcomes(batch.id)
            due = await uow.batches.lock_human_deadline_due(datetime.now(UTC), 10)
        assert released == 2
        assert after is not None
        assert (after.planned, after.human_released, after.human_pending) == (3, 2, 0)
        assert after.human_judging == batch.human_judging
        assert sorted(read.verdict.tolist()[2:]) == [
            Verdict.B_WON,
            Verdict.RELEASED,
            Verdict.RELEASED,
        ]
        assert batch.id not in {b.id for b in due}

    async def test_a_batch_waiting_on_people_before_the_deadline_is_never_stale(
        self, transaction: Transactions
    ) -> None:
        idle = datetime.now(UTC) - timedelta(hours=2)
        future = datetime.now(UTC) + timedelta(hours=1)
        waiting = replace(
            _batch(f"ref-{uuid.uuid4().hex}", last_activity_at=idle, threshold_reached_at=idle),
            human_judging=_people(future),
            human_deadline=future,
            human_planned=2,
        )
        done = replace(waiting, id=uuid.uuid4(), entity_ref=f"ref-{uuid.uuid4().hex}")
        done = replace(done, human_answered=2)
        async with transaction() as uow:
            await uow.batches.add(waiting)
            await uow.batches.add(done)
        async with transaction() as uow:
            stale = await uow.batches.lock_stale(
                inactive_since=datetime.now(UTC) - timedelta(minutes=5),
                batch_mode_inactive_since=datetime.now(UTC) - timedelta(minutes=5),
                threshold_since=datetime.now(UTC) - timedelta(minutes=5),
                limit=1000,
            )
        ids = {b.id for b in stale}
        assert waiting.id not in ids
        assert done.id in ids
