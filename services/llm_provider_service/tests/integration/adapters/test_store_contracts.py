"""One suite, two implementations: the batch store and its unit of work behave the same in memory
(`testing/fakes.py`, what the unit tests use) and on the real PostgreSQL (`adapters/postgres.py`).

Times are chosen so that both clocks agree: 0 s (due, run out) or an hour (not yet)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select, text

from common_core.events.envelope import new_event
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from common_core.runtime.outbox import event_outbox
from common_core.runtime.unit_of_work import SessionTransactions
from llm_provider_service.adapters.postgres import PostgresUnitOfWork
from llm_provider_service.application.ports import (
    ProviderBatchRecord,
    QueuedRequest,
    Transactions,
)
from llm_provider_service.entrypoints.runtime import VERSIONS_DIR
from llm_provider_service.testing.fakes import FakeTransactions
from llm_provider_service.testing.requests import comparison_envelope

pytestmark = pytest.mark.integration

HOUR = 3600.0


@dataclass(frozen=True)
class Stores:
    """One implementation: its transactions and a reader of what its commits put in the outbox."""

    transactions: Transactions
    outbox_event_ids: Callable[[], Awaitable[list[UUID]]]


@pytest.fixture(params=["fake", "postgres"])
async def stores(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Stores]:
    """The unit of work's transactions, in memory or on a migrated, emptied database."""
    if request.param == "fake":
        fake = FakeTransactions()

        async def staged() -> list[UUID]:
            return [event.envelope.event_id for event in fake.outbox]

        yield Stores(fake, staged)
        return
    await run_migrations(database_url, [VERSIONS_DIR])
    engine = create_engine(database_url, pool_size=2)
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE batch_items, provider_batches, event_outbox"))

    async def outboxed() -> list[UUID]:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(event_outbox.c.event_id).order_by(event_outbox.c.id)
            )
            return list(rows.scalars())

    try:
        transactions = SessionTransactions(create_session_factory(engine), PostgresUnitOfWork)
        yield Stores(transactions, outboxed)
    finally:
        await engine.dispose()


def _request(provider: str = "openai", model: str = "gpt-4o-mini") -> QueuedRequest:
    return QueuedRequest(
        request_id=uuid4(),
        kind="comparison",
        provider=provider,
        model=model,
        envelope='{"request": true}',
        message_key="k",
    )


async def _add(stores: Stores, *requests: QueuedRequest) -> None:
    async with stores.transactions() as uow:
        for request in requests:
            assert await uow.batches.add_request(request)


async def _open(
    stores: Stores,
    *,
    window: float = 0.0,
    max_size: int = 10,
    lease: float = HOUR,
    one_at_a_time: frozenset[str] = frozenset(),
) -> ProviderBatchRecord | None:
    async with stores.transactions() as uow:
        return await uow.batches.open_batch(
            window_seconds=window,
            max_size=max_size,
            lease_seconds=lease,
            poll_seconds=HOUR,
            one_at_a_time=one_at_a_time,
        )


class TestRecordingRequests:
    async def test_a_request_is_recorded_once(self, stores: Stores) -> None:
        request = _request()
        async with stores.transactions() as uow:
            assert await uow.batches.add_request(request)
        async with stores.transactions() as uow:
            assert not await uow.batches.add_request(request)

    async def test_a_unit_of_work_that_raises_leaves_nothing_behind(self, stores: Stores) -> None:
        request = _request()
        envelope = comparison_envelope("requests", "callbacks")

        async def record_then_fail() -> None:
            async with stores.transactions() as uow:
                await uow.batches.add_request(request)
                uow.stage_event("callbacks", envelope, "k")
                raise RuntimeError("the handler failed")

        with pytest.raises(RuntimeError):
            await record_then_fail()
        async with stores.transactions() as uow:
            assert await uow.batches.add_request(request)
        assert await stores.outbox_event_ids() == []

    async def test_staged_events_and_after_commit_actions_follow_the_commit(
        self, stores: Stores
    ) -> None:
        envelope = new_event(
            "callbacks",
            comparison_envelope("requests", "callbacks").data,
            source_service="tests",
            correlation_id=uuid4(),
        )
        ran: list[str] = []
        async with stores.transactions() as uow:
            uow.stage_event("callbacks", envelope, "k")
            uow.after_commit(lambda: ran.append("counted"))
            assert ran == []
        assert ran == ["counted"]
        assert await stores.outbox_event_ids() == [envelope.event_id]


class TestOpeningBatches:
    async def test_nothing_is_due_while_the_oldest_is_young_and_the_chunk_not_full(
        self, stores: Stores
    ) -> None:
        assert await _open(stores) is None
        await _add(stores, _request(), _request())
        assert await _open(stores, window=HOUR, max_size=3) is None

    async def test_a_full_chunk_is_due_at_once_and_takes_at_most_max_size_of_one_group(
        self, stores: Stores
    ) -> None:
        openai = [_request() for _ in range(3)]
        await _add(stores, *openai, _request("anthropic", "claude-3-5-haiku"))
        batch = await _open(stores, window=HOUR, max_size=2)
        assert batch is not None
        assert (batch.provider, batch.model, batch.item_count) == ("openai", "gpt-4o-mini", 2)
        assert batch.provider_batch_id is None
        async with stores.transactions() as uow:
            taken = await uow.batches.requests_of(batch.id)
        assert {r.request_id for r in taken} <= {r.request_id for r in openai}
        assert len(taken) == 2
        assert all(isinstance(r.queued_at, datetime) for r in taken)
        # One openai request and one anthropic request are left: neither is due yet.
        assert await _open(stores, window=HOUR, max_size=2) is None

    async def test_requests_older_than_the_window_are_due_and_taken_once(
        self, stores: Stores
    ) -> None:
        requests = [_request() for _ in range(2)]
        for request in requests:
            await _add(stores, request)
        batch = await _open(stores)
        assert batch is not None
        async with stores.transactions() as uow:
            taken = await uow.batches.requests_of(batch.id)
        assert [r.request_id for r in taken] == [r.request_id for r in requests]  # oldest first
        assert [r.envelope for r in taken] == ['{"request": true}'] * 2
        assert await _open(stores) is None

    async def test_a_one_at_a_time_provider_gets_no_batch_while_one_is_being_submitted(
        self, stores: Stores
    ) -> None:
        serial = frozenset({"anthropic"})
        await _add(stores, _request("anthropic", "claude-3-5-haiku"))
        first = await _open(stores, max_size=1, one_at_a_time=serial)
        assert first is not None
        await _add(stores, _request("anthropic", "claude-3-5-haiku"), _request())
        other = await _open(stores, max_size=1, one_at_a_time=serial)
        assert other is not None
        assert other.provider == "openai"  # only the serial provider waits
        assert await _open(stores, max_size=1, one_at_a_time=serial) is None
        async with stores.transactions() as uow:
            assert await uow.batches.record_submission(first.id, "msgbatch-1", poll_seconds=HOUR)
        second = await _open(stores, max_size=1, one_at_a_time=serial)
        assert second is not None
        assert second.provider == "anthropic"


class TestSubmissionsAndLeases:
    async def test_a_submission_is_recorded_once_and_known_afterwards(self, stores: Stores) -> None:
        await _add(stores, _request())
        batch = await _open(stores)
        assert batch is not None
        async with stores.transactions() as uow:
            assert await uow.batches.record_submission(batch.id, "pb-1", poll_seconds=HOUR)
            assert not await uow.batches.record_submission(batch.id, "pb-2", poll_seconds=HOUR)
        async with stores.transactions() as uow:
            assert await uow.batches.known_provider_batches("openai") == {"pb-1"}
            assert await uow.batches.known_provider_batches("anthropic") == set()

    async def test_an_unrecorded_batch_is_claimed_only_once_its_lease_ran_out(
        self, stores: Stores
    ) -> None:
        await _add(stores, _request())
        held = await _open(stores, lease=HOUR)
        assert held is not None
        async with stores.transactions() as uow:
            assert await uow.batches.claim_unrecorded(lease_seconds=HOUR) is None
        await _add(stores, _request("anthropic", "claude-3-5-haiku"))
        lapsed = await _open(stores, lease=0.0)
        assert lapsed is not None
        async with stores.transactions() as uow:
            claimed = await uow.batches.claim_unrecorded(lease_seconds=HOUR)
        assert claimed is not None
        assert claimed.id == lapsed.id
        async with stores.transactions() as uow:  # the claim renewed the lease
            assert await uow.batches.claim_unrecorded(lease_seconds=HOUR) is None


class TestPolling:
    async def _submitted(self, stores: Stores, poll_seconds: float) -> UUID:
        await _add(stores, _request())
        batch = await _open(stores)
        assert batch is not None
        async with stores.transactions() as uow:
            assert await uow.batches.record_submission(
                batch.id, f"pb-{batch.id}", poll_seconds=poll_seconds
            )
        return batch.id

    async def test_a_batch_is_due_for_a_check_when_its_interval_has_passed(
        self, stores: Stores
    ) -> None:
        later = await self._submitted(stores, HOUR)
        due = await self._submitted(stores, 0.0)
        async with stores.transactions() as uow:
            claimed = await uow.batches.claim_due(10)
        assert [b.id for b in claimed] == [due]
        assert claimed[0].provider_batch_id == f"pb-{due}"
        async with stores.transactions() as uow:
            await uow.batches.schedule_poll(due, HOUR)
            await uow.batches.schedule_poll(later, 0.0)
        async with stores.transactions() as uow:
            claimed = await uow.batches.claim_due(10)
        assert [(b.id, b.poll_interval_seconds) for b in claimed] == [(later, 0.0)]

    async def test_an_ended_batch_is_not_checked_again(self, stores: Stores) -> None:
        batch_id = await self._submitted(stores, 0.0)
        async with stores.transactions() as uow:
            await uow.batches.end_batch(batch_id, "completed")
        async with stores.transactions() as uow:
            assert await uow.batches.claim_due(10) == []


class TestAnsweringAndRetention:
    async def test_answered_requests_leave_the_batch_and_are_purged_with_it(
        self, stores: Stores
    ) -> None:
        requests = [_request(), _request()]
        await _add(stores, *requests)
        batch = await _open(stores)
        assert batch is not None
        async with stores.transactions() as uow:
            await uow.batches.finish_request(requests[0].request_id)
        async with stores.transactions() as uow:
            left = await uow.batches.requests_of(batch.id)
            assert [r.request_id for r in left] == [requests[1].request_id]
            assert await uow.batches.purge_finished(HOUR) == 0
            await uow.batches.finish_request(requests[1].request_id)
            await uow.batches.end_batch(batch.id, "completed")
        # At most `limit` requests per call; the batch goes with the last of them.
        async with stores.transactions() as uow:
            assert await uow.batches.purge_finished(0.0, limit=1) == 1
        async with stores.transactions() as uow:
            assert await uow.batches.purge_finished(0.0, limit=1) == 1
            assert await uow.batches.purge_finished(0.0, limit=1) == 0
        # Purged: the ids may be recorded again, and the batch is gone.
        async with stores.transactions() as uow:
            assert await uow.batches.add_request(requests[0])
            assert await uow.batches.known_provider_batches("openai") == set()

    async def test_a_purge_keeps_an_ended_batch_whose_requests_are_not_purged(
        self, stores: Stores
    ) -> None:
        request = _request()
        await _add(stores, request)
        batch = await _open(stores)
        assert batch is not None
        async with stores.transactions() as uow:
            assert await uow.batches.record_submission(batch.id, "pb-kept", poll_seconds=HOUR)
            await uow.batches.end_batch(batch.id, "expired")
        async with stores.transactions() as uow:
            assert await uow.batches.purge_finished(0.0) == 0
            assert await uow.batches.known_provider_batches("openai") == {"pb-kept"}


class TestErasure:
    async def test_a_keys_waiting_requests_are_dropped_and_those_at_a_provider_counted(
        self, stores: Stores
    ) -> None:
        at_provider = replace(_request(model="other-model"), message_key="cj-batch")
        waiting = [replace(_request(), message_key="cj-batch") for _ in range(2)]
        another = replace(_request(), message_key="another")
        await _add(stores, at_provider)
        batch = await _open(stores)
        assert batch is not None
        await _add(stores, *waiting, another)
        async with stores.transactions() as uow:
            first = await uow.batches.drop_waiting("cj-batch")
        async with stores.transactions() as uow:
            again = await uow.batches.drop_waiting("cj-batch")
            queued = await uow.batches.requests_of(batch.id)
            # The dropped ids are free again; the other key's request is still recorded.
            assert await uow.batches.add_request(waiting[0])
            assert not await uow.batches.add_request(another)
        assert (first, again) == ((2, 1), (0, 1))
        assert [r.request_id for r in queued] == [at_provider.request_id]
