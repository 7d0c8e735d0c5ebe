"""In-memory fakes of the application's unit of work and its stores, for unit tests: the same
behaviour as the PostgreSQL ones (`tests/integration/adapters/test_store_contracts.py` runs both
against one suite), on a clock the test can move."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from common_core.events.envelope import EventEnvelope
from llm_provider_service.application.ports import ProviderBatchRecord, QueuedRequest

PENDING, QUEUED, DONE = "pending", "queued", "done"
SUBMITTING, SUBMITTED, ENDED = "submitting", "submitted", "ended"


@dataclass
class FakeItem:
    """A recorded batch-mode request."""

    request: QueuedRequest
    created_at: datetime
    state: str = PENDING
    batch_id: UUID | None = None
    finished_at: datetime | None = None


@dataclass
class FakeProviderBatch:
    """A provider batch row."""

    id: UUID
    provider: str
    model: str
    item_count: int
    poll_interval_seconds: float
    created_at: datetime
    state: str = SUBMITTING
    provider_batch_id: str | None = None
    lease_until: datetime | None = None
    next_poll_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None

    def record(self) -> ProviderBatchRecord:
        """The row as the application sees it."""
        return ProviderBatchRecord(
            id=self.id,
            provider=self.provider,
            model=self.model,
            provider_batch_id=self.provider_batch_id,
            item_count=self.item_count,
            poll_interval_seconds=self.poll_interval_seconds,
            created_at=self.created_at,
        )


@dataclass
class FakeBatches:
    """The application's `BatchStore` in memory; `advance` moves its clock."""

    items: dict[UUID, FakeItem] = field(default_factory=dict)
    provider_batches: dict[UUID, FakeProviderBatch] = field(default_factory=dict)
    offset: timedelta = timedelta(0)
    transaction_started: datetime | None = None

    def now(self) -> datetime:
        """The store's clock: the real time plus what the test advanced it by; within a unit of
        work, the time it started (as PostgreSQL's `now()`)."""
        return self.transaction_started or datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """Move the clock on (leases run out, polls fall due, requests age)."""
        self.offset += timedelta(seconds=seconds)

    async def add_request(self, request: QueuedRequest) -> bool:
        """Record the request unless its id is known."""
        if request.request_id in self.items:
            return False
        self.items[request.request_id] = FakeItem(request, created_at=self.now())
        return True

    async def open_batch(
        self,
        *,
        window_seconds: float,
        max_size: int,
        lease_seconds: float,
        poll_seconds: float,
        one_at_a_time: Collection[str] = (),
    ) -> ProviderBatchRecord | None:
        """The oldest due group's pending requests (up to `max_size`) in a new batch; none for
        a provider in `one_at_a_time` with a batch still `submitting`."""
        now = self.now()
        due_before = now - timedelta(seconds=window_seconds)
        groups: dict[tuple[str, str], list[FakeItem]] = {}
        for item in sorted(self.items.values(), key=_age):
            if item.state == PENDING:
                groups.setdefault((item.request.provider, item.request.model), []).append(item)
        submitting = {b.provider for b in self.provider_batches.values() if b.state == SUBMITTING}
        for (provider, model), pending in groups.items():
            if pending[0].created_at > due_before and len(pending) < max_size:
                continue
            if provider in one_at_a_time and provider in submitting:
                continue
            chosen = pending[:max_size]
            batch = FakeProviderBatch(
                id=uuid4(),
                provider=provider,
                model=model,
                item_count=len(chosen),
                poll_interval_seconds=poll_seconds,
                created_at=now,
                lease_until=now + timedelta(seconds=lease_seconds),
            )
            self.provider_batches[batch.id] = batch
            for item in chosen:
                item.state, item.batch_id = QUEUED, batch.id
            return batch.record()
        return None

    async def requests_of(self, batch_id: UUID) -> list[QueuedRequest]:
        """The batch's requests not yet answered, oldest first."""
        items = sorted(self.items.values(), key=_age)
        return [_with_queued_at(i) for i in items if i.batch_id == batch_id and i.state == QUEUED]

    async def record_submission(
        self, batch_id: UUID, provider_batch_id: str, *, poll_seconds: float
    ) -> bool:
        """`submitting` -> `submitted`; False when the batch is not submitting."""
        batch = self.provider_batches.get(batch_id)
        if batch is None or batch.state != SUBMITTING:
            return False
        batch.state, batch.provider_batch_id, batch.lease_until = SUBMITTED, provider_batch_id, None
        batch.next_poll_at = self.now() + timedelta(seconds=poll_seconds)
        batch.poll_interval_seconds = poll_seconds
        return True

    async def claim_unrecorded(self, *, lease_seconds: float) -> ProviderBatchRecord | None:
        """Renew the lease of the `submitting` batch whose lease ran out first."""
        now = self.now()
        stale = [
            b
            for b in self.provider_batches.values()
            if b.state == SUBMITTING and b.lease_until is not None and b.lease_until < now
        ]
        if not stale:
            return None
        batch = min(stale, key=lambda b: b.lease_until or now)
        batch.lease_until = now + timedelta(seconds=lease_seconds)
        return batch.record()

    async def known_provider_batches(self, provider: str) -> set[str]:
        """Provider batch ids recorded for the provider."""
        return {
            b.provider_batch_id
            for b in self.provider_batches.values()
            if b.provider == provider and b.provider_batch_id is not None
        }

    async def claim_due(self, limit: int) -> list[ProviderBatchRecord]:
        """Submitted batches whose check is due, the longest due first."""
        now = self.now()
        due = [
            b
            for b in self.provider_batches.values()
            if b.state == SUBMITTED and b.next_poll_at is not None and b.next_poll_at <= now
        ]
        due.sort(key=lambda b: b.next_poll_at or now)
        return [b.record() for b in due[:limit]]

    async def schedule_poll(self, batch_id: UUID, interval_seconds: float) -> None:
        """Next check after `interval_seconds`."""
        batch = self.provider_batches[batch_id]
        batch.next_poll_at = self.now() + timedelta(seconds=interval_seconds)
        batch.poll_interval_seconds = interval_seconds

    async def end_batch(self, batch_id: UUID, outcome: str) -> None:
        """Mark the batch ended."""
        batch = self.provider_batches[batch_id]
        batch.state, batch.outcome, batch.ended_at = ENDED, outcome, self.now()
        batch.next_poll_at = batch.lease_until = None

    async def finish_request(self, request_id: UUID) -> None:
        """Mark the request answered; its text is not kept."""
        item = self.items[request_id]
        item.state, item.finished_at = DONE, self.now()
        item.request = replace(item.request, envelope="")

    async def drop_waiting(self, message_key: str) -> tuple[int, int]:
        """Delete the key's pending requests; (deleted, still queued)."""
        ours = [i for i in self.items.values() if i.request.message_key == message_key]
        waiting = [i.request.request_id for i in ours if i.state == PENDING]
        for request_id in waiting:
            del self.items[request_id]
        return len(waiting), sum(1 for i in ours if i.state == QUEUED)

    async def purge_finished(self, older_than_seconds: float, limit: int = 1000) -> int:
        """Forget up to `limit` answered requests finished longer ago than given, and the ended
        batches left without requests."""
        cutoff = self.now() - timedelta(seconds=older_than_seconds)
        old = [
            request_id
            for request_id, item in self.items.items()
            if item.state == DONE and item.finished_at is not None and item.finished_at < cutoff
        ][:limit]
        for request_id in old:
            del self.items[request_id]
        holding = {item.batch_id for item in self.items.values()}
        for batch_id, batch in list(self.provider_batches.items()):
            ended_before = batch.ended_at is not None and batch.ended_at < cutoff
            if batch.state == ENDED and ended_before and batch_id not in holding:
                del self.provider_batches[batch_id]
        return len(old)


def _age(item: FakeItem) -> tuple[datetime, UUID]:
    return item.created_at, item.request.request_id


def _with_queued_at(item: FakeItem) -> QueuedRequest:
    return replace(item.request, queued_at=item.created_at)


@dataclass(frozen=True, slots=True)
class StagedEvent:
    """An event a committed unit of work put into the outbox."""

    topic: str
    envelope: EventEnvelope[Any]
    key: str | None


class FakeUnitOfWork:
    """The application's `UnitOfWork` over the fake stores."""

    def __init__(self, batches: FakeBatches) -> None:
        self.batches = batches
        self.staged: list[StagedEvent] = []
        self.after: list[Callable[[], None]] = []

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event into this transaction's outbox."""
        self.staged.append(StagedEvent(topic, envelope, key))

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed."""
        self.after.append(action)


class FakeTransactions:
    """The application's `Transactions`: a block that raises leaves the stores and the outbox
    as they were; one that ends normally publishes its staged events to `outbox`."""

    def __init__(self, batches: FakeBatches | None = None) -> None:
        self.batches = batches or FakeBatches()
        self.outbox: list[StagedEvent] = []
        self.commits = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        """A unit of work, committed when the block ends normally."""
        before = copy.deepcopy((self.batches.items, self.batches.provider_batches))
        uow = FakeUnitOfWork(self.batches)
        self.batches.transaction_started = self.batches.now()
        try:
            yield uow
        except BaseException:
            self.batches.items, self.batches.provider_batches = before
            raise
        finally:
            self.batches.transaction_started = None
        self.outbox.extend(uow.staged)
        self.commits += 1
        for action in uow.after:
            action()
