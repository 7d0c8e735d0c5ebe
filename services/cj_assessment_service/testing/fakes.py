"""In-memory fakes of the unit of work and its stores, for the use cases' unit tests and the
store contract suite (which runs them against the PostgreSQL stores)."""

from __future__ import annotations

import contextlib
import copy
import statistics
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np

from cj_assessment_service.application.ports import (
    BatchRecord,
    ErasureRecord,
    EssayRecord,
    HedgeCall,
    NewHedge,
    NewPair,
    PairAnswer,
    PairOutcomes,
    PairRecord,
    PairReissue,
    StoredEssaySet,
    Verdict,
)
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.domain.scoring import ScoredEssay
from cj_assessment_service.testing.fake_human_judging import FakeHumanJudging
from common_core.events.cj import CJCompletionReason, EssayRanking
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import ComparisonWinner, LLMMode


def _verdict(pair: PairRecord) -> Verdict:
    """A pair's verdict, as the PostgreSQL store's `_VERDICT` computes it."""
    if pair.status == PairStatus.PENDING:
        return Verdict.PENDING
    if pair.status == PairStatus.FAILED:
        return Verdict.FAILED
    if pair.status == PairStatus.RELEASED:
        return Verdict.RELEASED
    return Verdict.A_WON if pair.winner == ComparisonWinner.ESSAY_A.value else Verdict.B_WON


class FakeHedges:
    """Hedged calls by request id."""

    def __init__(self) -> None:
        self.rows: dict[UUID, HedgeCall] = {}

    async def add(self, batch_id: UUID, hedges: Sequence[NewHedge], at: datetime) -> None:
        for h in hedges:
            for request_id, hedge in (
                (h.outstanding_request_id, False),
                (h.hedge_request_id, True),
            ):
                self.rows[request_id] = HedgeCall(request_id, h.pair_id, hedge, False)

    async def calls(self, request_ids: Sequence[UUID]) -> dict[UUID, list[HedgeCall]]:
        pair_ids = {self.rows[r].pair_id for r in request_ids if r in self.rows}
        calls: dict[UUID, list[HedgeCall]] = {}
        for h in self.rows.values():
            if h.pair_id in pair_ids:
                calls.setdefault(h.pair_id, []).append(h)
        return calls

    async def mark_answered(self, request_ids: Sequence[UUID], at: datetime) -> None:
        for r in request_ids:
            self.rows[r] = replace(self.rows[r], answered=True)


class FakePairs:
    """Pairs by id, with the time each was answered."""

    def __init__(self, hedges: FakeHedges) -> None:
        self.rows: dict[UUID, PairRecord] = {}
        self.answered_at: dict[UUID, datetime] = {}
        # Pairs of people whose verdict has been staged (the judging page's submit).
        self.submitted: set[UUID] = set()
        self._hedges = hedges

    async def add(self, batch_id: UUID, wave: int, pairs: Sequence[NewPair]) -> None:
        now = datetime.now(UTC)
        for p in pairs:
            self.rows[p.id] = PairRecord(
                p.id,
                batch_id,
                wave,
                p.essay_a,
                p.essay_b,
                p.request_id,
                PairStatus.PENDING,
                None,
                attempts=1,
                requested_at=now,
                judge_kind=p.judge_kind,
                judge_id=p.judge_id,
            )

    async def by_request(self, request_ids: Sequence[UUID]) -> dict[UUID, PairRecord]:
        wanted = set(request_ids)
        found = {p.request_id: p for p in self.rows.values() if p.request_id in wanted}
        for h in self._hedges.rows.values():
            if h.request_id in wanted:
                found.setdefault(h.request_id, self.rows[h.pair_id])
        return found

    async def outstanding(self, batch_id: UUID) -> tuple[list[PairRecord], set[UUID], float | None]:
        pairs = [p for p in self.rows.values() if p.batch_id == batch_id]
        times = [
            (self.answered_at[p.id] - p.requested_at).total_seconds()
            for p in pairs
            if p.status == PairStatus.COMPLETED and p.id in self.answered_at
        ]
        ids = {p.id for p in pairs}
        hedged = {h.pair_id for h in self._hedges.rows.values() if h.pair_id in ids}
        median = statistics.median(times) if times else None
        outstanding = [p for p in pairs if p.status == PairStatus.PENDING and p.judge_kind is None]
        return outstanding, hedged, median

    async def outcomes(self, batch_id: UUID, *, with_judges: bool = False) -> PairOutcomes:
        pairs = [p for p in self.rows.values() if p.batch_id == batch_id]
        return PairOutcomes(
            np.array([p.essay_a for p in pairs], dtype=np.int64),
            np.array([p.essay_b for p in pairs], dtype=np.int64),
            np.array([_verdict(p) for p in pairs], dtype=np.int8),
            None
            if all(p.probability_a_better is None for p in pairs)
            else np.array([p.probability_a_better for p in pairs], dtype=np.float64),
            human=(
                np.array([p.judge_kind == "human" for p in pairs], dtype=np.bool_)
                if with_judges
                else None
            ),
            judge=(
                np.array([p.judge_id or "" for p in pairs], dtype=np.object_)
                if with_judges
                else None
            ),
        )

    async def release_human_pairs(self, batch_id: UUID, at: datetime) -> int:
        released = [
            p
            for p in self.rows.values()
            if p.batch_id == batch_id
            and p.judge_kind == "human"
            and p.status == PairStatus.PENDING
            and p.id not in self.submitted
        ]
        for p in released:
            self.rows[p.id] = replace(p, status=PairStatus.RELEASED)
        return len(released)

    async def save_answers(self, answers: Sequence[PairAnswer], answered_at: datetime) -> None:
        for a in answers:
            self.rows[a.pair_id] = replace(
                self.rows[a.pair_id],
                status=a.status,
                winner=a.winner,
                probability_a_better=a.probability_a_better,
                judge_id=a.judge_id or self.rows[a.pair_id].judge_id,
            )
            self.answered_at[a.pair_id] = answered_at

    async def reissue(self, reissues: Sequence[PairReissue], requested_at: datetime) -> None:
        for r in reissues:
            pair = self.rows[r.pair_id]
            self.rows[r.pair_id] = replace(
                pair, request_id=r.request_id, attempts=pair.attempts + 1, requested_at=requested_at
            )


class FakeEssays:
    """The essays of each batch in position order, and their final scores."""

    def __init__(self) -> None:
        self.rows: dict[UUID, list[EssayRecord]] = {}
        self.scores: dict[UUID, list[EssayRanking]] = {}

    async def add(self, batch_id: UUID, essays: Sequence[EssayRecord]) -> None:
        rows = [*self.rows.get(batch_id, []), *essays]
        self.rows[batch_id] = sorted(rows, key=lambda e: e.position)

    async def get(
        self, batch_id: UUID, positions: Collection[int] | None = None
    ) -> list[EssayRecord]:
        rows = self.rows.get(batch_id, [])
        wanted = set(positions) if positions is not None else None
        return [e for e in rows if wanted is None or e.position in wanted]

    async def scored(self, batch_id: UUID) -> list[ScoredEssay]:
        return [ScoredEssay(e.essay_id, e.anchor_grade) for e in self.rows.get(batch_id, [])]

    async def count(self, batch_id: UUID) -> int:
        return len(self.rows.get(batch_id, []))

    async def save_scores(self, batch_id: UUID, rankings: Sequence[EssayRanking]) -> None:
        self.scores[batch_id] = list(rankings)


class FakeBatches:
    """Batches by id, and the claimed request event ids."""

    def __init__(self, pairs: FakePairs, hedges: FakeHedges) -> None:
        self.rows: dict[UUID, BatchRecord] = {}
        self.claimed: set[UUID] = set()
        self._pairs = pairs
        self._hedges = hedges

    async def claim_request(self, event_id: UUID) -> bool:
        if event_id in self.claimed:
            return False
        self.claimed.add(event_id)
        return True

    async def live_id(self, entity_ref: str) -> UUID | None:
        for batch in self.rows.values():
            if batch.entity_ref == entity_ref and not batch.state.is_terminal:
                return batch.id
        return None

    async def add(self, batch: BatchRecord) -> None:
        self.rows[batch.id] = batch

    async def get(self, batch_id: UUID) -> BatchRecord | None:
        return self.rows.get(batch_id)

    async def newest(self, entity_ref: str) -> BatchRecord | None:
        found = [b for b in self.rows.values() if b.entity_ref == entity_ref]
        return max(found, key=lambda b: b.created_at) if found else None

    async def lock(self, batch_id: UUID) -> BatchRecord | None:
        return self.rows.get(batch_id)

    async def lock_for_requests(self, request_ids: Sequence[UUID]) -> dict[UUID, BatchRecord]:
        wanted = set(request_ids)
        pairs = self._pairs.rows
        owners = {p.batch_id for p in pairs.values() if p.request_id in wanted}
        owners |= {
            pairs[h.pair_id].batch_id for h in self._hedges.rows.values() if h.request_id in wanted
        }
        return {i: self.rows[i] for i in sorted(owners) if i in self.rows}

    async def lock_stale(
        self,
        *,
        inactive_since: datetime,
        batch_mode_inactive_since: datetime,
        threshold_since: datetime,
        limit: int,
    ) -> list[BatchRecord]:
        def stale(b: BatchRecord) -> bool:
            batch_mode = b.request_settings.llm_config.mode == LLMMode.BATCH
            idle_since = batch_mode_inactive_since if batch_mode else inactive_since
            graced = (
                b.threshold_reached_at is not None and b.threshold_reached_at <= threshold_since
            )
            waiting_on_people = (
                b.human_deadline is not None
                and b.human_deadline > datetime.now(UTC)
                and b.human_pending > 0
            )
            return not waiting_on_people and (
                b.last_activity_at < idle_since
                or (b.state == BatchState.WAITING_CALLBACKS and graced)
            )

        live = [b for b in self.rows.values() if not b.state.is_terminal and stale(b)]
        return sorted(live, key=lambda b: b.last_activity_at)[:limit]

    async def lock_hedge_candidates(self, *, max_share: float, limit: int) -> list[BatchRecord]:
        return [
            b
            for b in sorted(self.rows.values(), key=lambda b: b.id)
            if b.state == BatchState.WAITING_CALLBACKS
            and b.planned >= b.budget
            and b.pending > 0
            and b.hedged < int(b.budget * max_share + 1e-9)
            and b.request_settings.llm_config.mode != LLMMode.BATCH
        ][:limit]

    async def count_live(self) -> tuple[dict[str, int], int]:
        counts = Counter(b.state.value for b in self.rows.values())
        pending = sum(b.pending for b in self.rows.values() if not b.state.is_terminal)
        return dict(counts), pending

    async def record_wave(
        self, batch_id: UUID, *, state: BatchState, planned: int, waves: int
    ) -> None:
        self._change(batch_id, state=state, planned=planned, waves=waves)

    async def record_answers(self, batch: BatchRecord) -> None:
        self._change(
            batch.id,
            completed=batch.completed,
            failed=batch.failed,
            prompt_tokens=batch.prompt_tokens,
            completion_tokens=batch.completion_tokens,
            cached_prompt_tokens=batch.cached_prompt_tokens,
            cache_write_tokens=batch.cache_write_tokens,
            estimated_cost_usd=batch.estimated_cost_usd,
            unpriced_answers=batch.unpriced_answers,
            judges=batch.judges,
            last_activity_at=batch.last_activity_at,
            threshold_reached_at=batch.threshold_reached_at,
            human_answered=batch.human_answered,
        )

    async def set_hedged(self, batch_id: UUID, hedged: int) -> None:
        self._change(batch_id, hedged=hedged)

    async def record_human_plan(self, batch_id: UUID, *, planned: int, human_planned: int) -> None:
        self._change(batch_id, planned=planned, human_planned=human_planned)

    async def lock_human_deadline_due(self, now: datetime, limit: int) -> list[BatchRecord]:
        due = [
            b
            for b in self.rows.values()
            if not b.state.is_terminal
            and b.human_deadline is not None
            and b.human_deadline <= now
            and b.human_pending > 0
        ]
        return sorted(due, key=lambda b: b.human_deadline or now)[:limit]

    async def record_release(self, batch: BatchRecord) -> None:
        self._change(
            batch.id,
            planned=batch.planned,
            human_released=batch.human_released,
            last_activity_at=batch.last_activity_at,
        )

    async def mark_completed(
        self,
        batch_id: UUID,
        *,
        reason: CJCompletionReason,
        partial_scoring_triggered: bool,
        result: dict[str, Any],
        at: datetime,
    ) -> None:
        self._change(
            batch_id,
            state=BatchState.COMPLETED,
            completion_reason=reason.value,
            partial_scoring_triggered=partial_scoring_triggered,
            result=result,
            finished_at=at,
        )

    async def mark_failed(
        self, batch_id: UUID, *, state: BatchState, error_detail: dict[str, Any], at: datetime
    ) -> None:
        self._change(batch_id, state=state, error_detail=error_detail, finished_at=at)

    def _change(self, batch_id: UUID, **values: Any) -> None:
        self.rows[batch_id] = replace(self.rows[batch_id], **values, updated_at=datetime.now(UTC))


class FakeEssaySets:
    """Uploaded sets: their expiry, their essays, and (once sealed) their count and digest;
    `writes` records the size of every essay insert."""

    def __init__(self) -> None:
        self.expiry: dict[UUID, datetime] = {}
        self.essays: dict[UUID, list[EssayRecord]] = {}
        self.sealed: dict[UUID, tuple[int, str]] = {}
        self.writes: list[int] = []

    async def create(self, set_id: UUID, created_at: datetime, expires_at: datetime) -> None:
        self.expiry[set_id] = expires_at
        self.essays[set_id] = []

    async def add_essays(self, set_id: UUID, essays: Sequence[EssayRecord]) -> None:
        if essays:
            self.writes.append(len(essays))
        self.essays[set_id].extend(essays)

    async def seal(self, set_id: UUID, essay_count: int, content_sha256: str) -> None:
        self.sealed[set_id] = (essay_count, content_sha256)

    async def get(self, set_id: UUID, now: datetime) -> StoredEssaySet | None:
        sealed = self.sealed.get(set_id)
        if sealed is None or sealed[0] == 0 or self.expiry[set_id] <= now:
            return None
        return StoredEssaySet(set_id, sealed[1], self.expiry[set_id], list(self.essays[set_id]))

    async def delete_expired(self, now: datetime, limit: int) -> int:
        expired = sorted((at, i) for i, at in self.expiry.items() if at <= now)[:limit]
        for _, set_id in expired:
            del self.expiry[set_id], self.essays[set_id]
            self.sealed.pop(set_id, None)
        return len(expired)

    async def erase(self, set_id: UUID) -> tuple[int, int]:
        if set_id not in self.expiry:
            return 0, 0
        essays = self.essays.pop(set_id)
        del self.expiry[set_id]
        self.sealed.pop(set_id, None)
        return 1, len(essays)


class FakeTextLifecycle:
    """Blanks texts in the fake essays, deletes staged requests from the fake outbox and keeps
    the erasure records in `erasures`."""

    def __init__(
        self,
        batches: FakeBatches,
        essays: FakeEssays,
        outbox: list[tuple[str, EventEnvelope[Any], str | None]],
    ) -> None:
        self.erasures: list[ErasureRecord] = []
        self._batches = batches
        self._essays = essays
        self._outbox = outbox

    async def lock_purgeable(self, finished_before: datetime, limit: int) -> list[UUID]:
        held = [
            (b.finished_at, b.id)
            for b in self._batches.rows.values()
            if b.texts_purged_at is None
            and b.finished_at is not None
            and b.finished_at < finished_before
        ]
        return [batch_id for _, batch_id in sorted(held)[:limit]]

    async def blank_texts(self, batch_ids: Sequence[UUID], at: datetime) -> int:
        blanked = 0
        for batch_id in batch_ids:
            rows = self._essays.rows.get(batch_id, [])
            blanked += sum(1 for e in rows if e.text_content)
            self._essays.rows[batch_id] = [replace(e, text_content="") for e in rows]
            batch = self._batches.rows[batch_id]
            if batch.texts_purged_at is None:
                self._batches.rows[batch_id] = replace(batch, texts_purged_at=at)
        return blanked

    async def delete_outbox_rows(self, topic: str, batch_id: UUID) -> int:
        batch = str(batch_id)

        def of_batch(envelope: EventEnvelope[Any], key: str | None) -> bool:
            metadata = getattr(envelope.data, "request_metadata", None) or {}
            return key == batch or metadata.get("batch_id") == batch

        kept = [row for row in self._outbox if not (row[0] == topic and of_batch(row[1], row[2]))]
        deleted = len(self._outbox) - len(kept)
        self._outbox[:] = kept
        return deleted

    async def erased_before(self, batch_id: UUID) -> bool:
        return any(r.batch_id == batch_id for r in self.erasures)

    async def record_erasure(self, record: ErasureRecord) -> None:
        self.erasures.append(record)


class FakeUnitOfWork:
    """The stores of every area in dicts, staged events in `outbox`; `commit()` runs the
    after-commit actions. Used directly, it is one long transaction that never commits."""

    def __init__(self) -> None:
        self.hedges = FakeHedges()
        self.pairs = FakePairs(self.hedges)
        self.batches = FakeBatches(self.pairs, self.hedges)
        self.essays = FakeEssays()
        self.essay_sets = FakeEssaySets()
        self.outbox: list[tuple[str, EventEnvelope[Any], str | None]] = []
        self.lifecycle = FakeTextLifecycle(self.batches, self.essays, self.outbox)
        self.human_judging = FakeHumanJudging(self.batches)
        self._after_commit: list[Callable[[], None]] = []

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        self.outbox.append((topic, envelope, key))

    def after_commit(self, action: Callable[[], None]) -> None:
        self._after_commit.append(action)

    def commit(self) -> None:
        """Run the after-commit actions."""
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()

    def events(self, topic_suffix: str) -> list[EventEnvelope[Any]]:
        """Staged events whose topic ends with a logical name."""
        return [e for t, e, _ in self.outbox if t.endswith(topic_suffix)]


class FakeTransactions:
    """Units of work over one `FakeUnitOfWork`: a block that ends normally commits, one that
    raises restores the state from before it."""

    def __init__(self, uow: FakeUnitOfWork | None = None) -> None:
        self.uow = uow or FakeUnitOfWork()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        """A unit of work, committed when the block ends normally, rolled back when it raises."""
        before = copy.deepcopy(self.uow.__dict__)
        try:
            yield self.uow
        except BaseException:
            self.uow.__dict__.update(before)
            raise
        self.uow.commit()
