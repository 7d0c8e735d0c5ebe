"""The PostgreSQL unit of work and its stores of batches, essays, pairs and hedged calls, each over
the unit of work's session (essay sets: `postgres_essay_sets.py`; retention and erasure of
texts: `postgres_data_lifecycle.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    Integer,
    Row,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.postgres_data_lifecycle import PostgresTextLifecycle
from cj_assessment_service.adapters.postgres_essay_sets import PostgresEssaySets
from cj_assessment_service.adapters.postgres_human_judging import PostgresHumanJudging
from cj_assessment_service.adapters.tables import (
    cj_batches,
    cj_essays,
    cj_hedge_calls,
    cj_pairs,
    cj_scores,
)
from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    HedgeCall,
    NewHedge,
    NewPair,
    PairAnswer,
    PairOutcomes,
    PairRecord,
    PairReissue,
    RequestSettings,
    Verdict,
)
from cj_assessment_service.config import SERVICE_NAME
from cj_assessment_service.domain.batch import ACTIVE_STATES, BatchState, PairStatus
from cj_assessment_service.domain.scoring import ScoredEssay
from common_core.events.cj import CJCompletionReason, EssayRanking, HumanJudgingRequest
from common_core.events.llm import ComparisonWinner, LLMMode
from common_core.runtime.inbox import claim_event
from common_core.runtime.unit_of_work import SessionUnitOfWork

_ACTIVE = [s.value for s in ACTIVE_STATES]
# The inbox consumer name under which request event ids are de-duplicated.
REQUEST_CONSUMER = f"{SERVICE_NAME}.requests"


def _batch(row: Row[Any]) -> BatchRecord:
    values = dict(row._mapping)
    values["state"] = BatchState(values["state"])
    values["request_settings"] = RequestSettings.from_json(values["request_settings"])
    if values["human_judging"] is not None:
        values["human_judging"] = HumanJudgingRequest.model_validate(values["human_judging"])
    return BatchRecord(**values)


# The stored strings, looked up rather than converted by `PairStatus(...)`: a batch of 200
# essays reads 19,900 pairs at the end of its wave.
_PAIR_STATUSES: dict[str, PairStatus] = {status.value: status for status in PairStatus}

# The LLM mode a batch's comparisons are asked in (`batch`: through a provider's batch API).
_BATCH_MODE = cj_batches.c.request_settings["llm_config"]["mode"].astext

# A batch's pairs as three arrays in planning order; the verdict codes are `Verdict`'s.
_PLANNING_ORDER = (cj_pairs.c.wave, cj_pairs.c.requested_at, cj_pairs.c.id)
_VERDICT = case(
    (cj_pairs.c.status == PairStatus.PENDING.value, Verdict.PENDING.value),
    (cj_pairs.c.status == PairStatus.FAILED.value, Verdict.FAILED.value),
    (cj_pairs.c.status == PairStatus.RELEASED.value, Verdict.RELEASED.value),
    (cj_pairs.c.winner == ComparisonWinner.ESSAY_A.value, Verdict.A_WON.value),
    else_=Verdict.B_WON.value,
)


def _column_array(column: ColumnElement[Any], name: str) -> ColumnElement[Any]:
    ordered = aggregate_order_by(column, *_PLANNING_ORDER)
    return func.coalesce(func.array_agg(ordered), literal([], ARRAY(Integer))).label(name)


_PAIR_OUTCOMES = select(
    _column_array(cj_pairs.c.essay_a, "essay_a"),
    _column_array(cj_pairs.c.essay_b, "essay_b"),
    _column_array(_VERDICT, "verdict"),
    # The judge probabilities (NULL for hard verdicts), read only when some verdict has one.
    func.bool_or(cj_pairs.c.probability_a_better.is_not(None)).label("any_probability"),
    func.array_agg(aggregate_order_by(cj_pairs.c.probability_a_better, *_PLANNING_ORDER)).label(
        "probability"
    ),
).where(cj_pairs.c.batch_id == bindparam("batch_id"))


def _pair(row: Sequence[Any]) -> PairRecord:
    # `_PAIR_COLUMNS` lists the columns in PairRecord's field order.
    (
        pair_id,
        batch_id,
        wave,
        essay_a,
        essay_b,
        request_id,
        status,
        winner,
        attempts,
        at,
        judge_kind,
        judge_id,
    ) = row
    return PairRecord(
        pair_id,
        batch_id,
        wave,
        essay_a,
        essay_b,
        request_id,
        _PAIR_STATUSES[status],
        winner,
        attempts,
        at,
        judge_kind=judge_kind,
        judge_id=judge_id,
    )


_UUID_ARRAY: ARRAY[Any] = ARRAY(PG_UUID(as_uuid=True))


def _uuids(name: str, values: Sequence[UUID]) -> BindParameter[Any]:
    """One uuid[] parameter: `= ANY(...)` keeps one prepared statement for any number of ids,
    where `IN (...)` would render (and prepare) a new statement per count."""
    return bindparam(name, list(values), type_=_UUID_ARRAY)


# A fetched batch of answers in one statement: the arrays are unnested into rows server-side.
_SAVE_ANSWERS = text(
    "UPDATE cj_pairs AS p SET status = a.status, winner = a.winner, "
    "error_code = a.error_code, probability_a_better = a.probability, answered_at = :answered_at, "
    "judge_id = COALESCE(a.judge_id, p.judge_id) "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]), CAST(:winners AS text[]), "
    "CAST(:errors AS text[]), CAST(:probabilities AS double precision[]), "
    "CAST(:judges AS text[])) "
    "AS a(id, status, winner, error_code, probability, judge_id) "
    "WHERE p.id = a.id"
)

# Which of a batch's pairs are people's and who judged each, in planning order (read for
# batches with human judges only).
_PAIR_JUDGES = select(
    func.coalesce(
        func.array_agg(
            aggregate_order_by(
                cj_pairs.c.judge_kind.is_not_distinct_from("human"), *_PLANNING_ORDER
            )
        ),
        literal([], ARRAY(Boolean)),
    ).label("human"),
    func.coalesce(
        func.array_agg(
            aggregate_order_by(func.coalesce(cj_pairs.c.judge_id, ""), *_PLANNING_ORDER)
        ),
        literal([], ARRAY(Text)),
    ).label("judge"),
).where(cj_pairs.c.batch_id == bindparam("batch_id"))

# The unjudged, unsubmitted pairs of a batch's people, released at their deadline.
_RELEASE_HUMAN_PAIRS = (
    update(cj_pairs)
    .where(
        cj_pairs.c.batch_id == bindparam("target_batch"),
        cj_pairs.c.judge_kind == "human",
        cj_pairs.c.status == PairStatus.PENDING.value,
        cj_pairs.c.submitted_at.is_(None),
    )
    .values(status=PairStatus.RELEASED.value, answered_at=bindparam("at"))
    .returning(cj_pairs.c.id)
)


_PENDING = cj_batches.c.planned - cj_batches.c.completed - cj_batches.c.failed
_HUMAN_PENDING = (
    cj_batches.c.human_planned - cj_batches.c.human_answered - cj_batches.c.human_released
)

_PAIR_COLUMNS = (
    cj_pairs.c.id,
    cj_pairs.c.batch_id,
    cj_pairs.c.wave,
    cj_pairs.c.essay_a,
    cj_pairs.c.essay_b,
    cj_pairs.c.request_id,
    cj_pairs.c.status,
    cj_pairs.c.winner,
    cj_pairs.c.attempts,
    cj_pairs.c.requested_at,
    cj_pairs.c.judge_kind,
    cj_pairs.c.judge_id,
)


class PostgresBatches:
    """Batches through one session's transaction.

    Changes are buffered and written together (executemany) before the next read of batches
    and just before the commit: a monitor pass that fails a thousand batches then costs a few
    round trips.
    """

    def __init__(
        self, session: AsyncSession, before_commit: Callable[[Callable[[], Awaitable[None]]], None]
    ) -> None:
        self._session = session
        self._before_commit = before_commit
        self._updates: list[tuple[UUID, dict[str, Any]]] = []

    async def claim_request(self, event_id: UUID) -> bool:
        """Record a request event as handled; False if it already was."""
        return await claim_event(self._session, consumer=REQUEST_CONSUMER, event_id=event_id)

    async def live_id(self, entity_ref: str) -> UUID | None:
        """The non-terminal batch for an upstream ref, if any."""
        await self._write_updates()
        result = await self._session.execute(
            select(cj_batches.c.id).where(
                cj_batches.c.entity_ref == entity_ref, cj_batches.c.state.in_(_ACTIVE)
            )
        )
        return result.scalar_one_or_none()

    async def add(self, batch: BatchRecord) -> None:
        """Insert a batch (the database stamps its creation, update and activity times)."""
        values = {
            name: getattr(batch, name)
            for name in BatchRecord.__dataclass_fields__
            if name not in {"created_at", "updated_at", "last_activity_at"}
        }
        values["state"] = batch.state.value
        values["request_settings"] = batch.request_settings.to_json()
        if batch.human_judging is not None:
            values["human_judging"] = batch.human_judging.model_dump(mode="json")
        await self._session.execute(cj_batches.insert().values(**values))

    async def record_wave(
        self, batch_id: UUID, *, state: BatchState, planned: int, waves: int
    ) -> None:
        """Store a batch's state, pairs planned and planning steps after it requested pairs."""
        self._update(batch_id, state=state.value, planned=planned, waves=waves)

    async def record_answers(self, batch: BatchRecord) -> None:
        """Store the answer counters, usage, judges, last activity and threshold of `batch`."""
        self._update(
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
        """Store how many hedged calls a batch has made."""
        self._update(batch_id, hedged=hedged)

    async def record_human_plan(self, batch_id: UUID, *, planned: int, human_planned: int) -> None:
        """Store a batch's pairs planned and pairs given to human judges."""
        self._update(batch_id, planned=planned, human_planned=human_planned)

    async def lock_human_deadline_due(self, now: datetime, limit: int) -> list[BatchRecord]:
        """Live batches past their people's deadline with pairs still given to them, locked
        with SKIP LOCKED (the partial index on `human_deadline` finds them)."""
        return await self._select(
            select(cj_batches)
            .where(
                cj_batches.c.human_deadline.is_not(None),
                cj_batches.c.finished_at.is_(None),
                cj_batches.c.human_deadline <= now,
                cj_batches.c.state.in_(_ACTIVE),
                _HUMAN_PENDING > 0,
            )
            .order_by(cj_batches.c.human_deadline)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def record_release(self, batch: BatchRecord) -> None:
        """Store the planned count, released pairs and last activity after a release."""
        self._update(
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
        """Move a batch to COMPLETED with its completion reason and result."""
        self._update(
            batch_id,
            state=BatchState.COMPLETED.value,
            completion_reason=reason.value,
            partial_scoring_triggered=partial_scoring_triggered,
            result=result,
            finished_at=at,
        )

    async def mark_failed(
        self, batch_id: UUID, *, state: BatchState, error_detail: dict[str, Any], at: datetime
    ) -> None:
        """Move a batch to `state` (FAILED or CANCELLED) with its error detail."""
        self._update(batch_id, state=state.value, error_detail=error_detail, finished_at=at)

    def _update(self, batch_id: UUID, **values: Any) -> None:
        if not self._updates:
            self._before_commit(self._write_updates)
        self._updates.append((batch_id, values))

    async def _write_updates(self) -> None:
        """The buffered changes, one executemany per run of changes to the same columns."""
        pending, self._updates = self._updates, []
        start = 0
        while start < len(pending):
            columns = sorted(pending[start][1])
            end = start
            while end < len(pending) and sorted(pending[end][1]) == columns:
                end += 1
            await self._session.execute(
                update(cj_batches)
                .where(cj_batches.c.id == bindparam("target_id"))
                .values(
                    {
                        **{name: bindparam(f"new_{name}") for name in columns},
                        "updated_at": func.now(),
                    }
                ),
                [
                    {"target_id": batch_id, **{f"new_{k}": v for k, v in changes.items()}}
                    for batch_id, changes in pending[start:end]
                ],
                execution_options={"synchronize_session": False},
            )
            start = end

    async def _select(self, query: Select[Any]) -> list[BatchRecord]:
        """The batches `query` selects, read after the buffered changes are written."""
        await self._write_updates()
        return [_batch(row) for row in (await self._session.execute(query)).all()]

    async def _first(self, query: Select[Any]) -> BatchRecord | None:
        found = await self._select(query)
        return found[0] if found else None

    async def get(self, batch_id: UUID) -> BatchRecord | None:
        """A batch, without locking."""
        return await self._first(select(cj_batches).where(cj_batches.c.id == batch_id))

    async def newest(self, entity_ref: str) -> BatchRecord | None:
        """The most recently created batch of an upstream ref."""
        return await self._first(
            select(cj_batches)
            .where(cj_batches.c.entity_ref == entity_ref)
            .order_by(cj_batches.c.created_at.desc())
            .limit(1)
        )

    async def lock(self, batch_id: UUID) -> BatchRecord | None:
        """A batch, locked for this transaction."""
        return await self._first(
            select(cj_batches).where(cj_batches.c.id == batch_id).with_for_update()
        )

    async def lock_for_requests(self, request_ids: Sequence[UUID]) -> dict[UUID, BatchRecord]:
        """The batches owning pairs with these request ids, locked in id order (so concurrent
        lockers cannot deadlock); one statement for a whole fetched batch of callbacks."""
        if not request_ids:
            await self._write_updates()
            return {}
        ids = _uuids("request_ids", request_ids)
        owners = union_all(
            select(cj_pairs.c.batch_id).where(cj_pairs.c.request_id == any_(ids)),
            select(cj_hedge_calls.c.batch_id).where(cj_hedge_calls.c.request_id == any_(ids)),
        )
        locked = await self._select(
            select(cj_batches)
            .where(cj_batches.c.id.in_(owners))
            .order_by(cj_batches.c.id)
            .with_for_update()
        )
        return {batch.id: batch for batch in locked}

    async def lock_stale(
        self,
        *,
        inactive_since: datetime,
        batch_mode_inactive_since: datetime,
        threshold_since: datetime,
        limit: int,
    ) -> list[BatchRecord]:
        """Live batches idle since `inactive_since` (`batch_mode_inactive_since` for batches
        whose comparisons go through a provider's batch API) or past their partial-scoring
        grace, locked with SKIP LOCKED so several monitors share the work."""
        batch_mode = _BATCH_MODE.is_not_distinct_from(LLMMode.BATCH.value)
        # A batch waiting on its people before their deadline is not stuck (the deadline
        # releases their pairs; see `lock_human_deadline_due`).
        waiting_on_people = and_(
            cj_batches.c.human_deadline.is_not(None),
            cj_batches.c.human_deadline > func.now(),
            _HUMAN_PENDING > 0,
        )
        return await self._select(
            select(cj_batches)
            .where(
                cj_batches.c.state.in_(_ACTIVE),
                ~waiting_on_people,
                or_(
                    and_(~batch_mode, cj_batches.c.last_activity_at < inactive_since),
                    and_(batch_mode, cj_batches.c.last_activity_at < batch_mode_inactive_since),
                    and_(
                        cj_batches.c.state == BatchState.WAITING_CALLBACKS.value,
                        cj_batches.c.threshold_reached_at <= threshold_since,
                    ),
                ),
            )
            .order_by(cj_batches.c.last_activity_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def lock_hedge_candidates(self, *, max_share: float, limit: int) -> list[BatchRecord]:
        """Batches waiting only on their tail (whole budget planned, answers outstanding) with
        hedges left in `max_share` of their budget, locked with SKIP LOCKED."""
        return await self._select(
            select(cj_batches)
            .where(
                cj_batches.c.state == BatchState.WAITING_CALLBACKS.value,
                cj_batches.c.planned >= cj_batches.c.budget,
                _PENDING > 0,
                cj_batches.c.hedged < func.floor(cj_batches.c.budget * max_share + 1e-9),
                # Batch-mode answers come within hours, all at once: nothing to hedge.
                _BATCH_MODE.is_distinct_from(LLMMode.BATCH.value),
            )
            .order_by(cj_batches.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    async def count_live(self) -> tuple[dict[str, int], int]:
        """Batches per state, and pending comparisons over live batches."""
        await self._write_updates()
        rows = (
            await self._session.execute(
                select(
                    cj_batches.c.state, func.count(), func.coalesce(func.sum(_PENDING), 0)
                ).group_by(cj_batches.c.state)
            )
        ).all()
        counts = {row[0]: int(row[1]) for row in rows}
        pending = sum(int(row[2]) for row in rows if row[0] in _ACTIVE)
        return counts, pending


class PostgresEssays:
    """The essays of batches and their scores, through one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch_id: UUID, essays: Sequence[EssayRecord]) -> None:
        """Insert the essays of a batch."""
        if not essays:
            return
        await self._session.execute(
            cj_essays.insert(),
            [
                {
                    "batch_id": batch_id,
                    "position": e.position,
                    "essay_id": e.essay_id,
                    "text_content": e.text_content,
                    "anchor_grade": e.anchor_grade,
                }
                for e in essays
            ],
        )

    async def get(
        self, batch_id: UUID, positions: Collection[int] | None = None
    ) -> list[EssayRecord]:
        """The essays of a batch in position order; only those at `positions` when given."""
        query = select(
            cj_essays.c.position,
            cj_essays.c.essay_id,
            cj_essays.c.text_content,
            cj_essays.c.anchor_grade,
        ).where(cj_essays.c.batch_id == batch_id)
        if positions is not None:
            query = query.where(cj_essays.c.position.in_(sorted(set(positions))))
        rows = (await self._session.execute(query.order_by(cj_essays.c.position))).all()
        return [EssayRecord(r.position, r.essay_id, r.text_content, r.anchor_grade) for r in rows]

    async def scored(self, batch_id: UUID) -> list[ScoredEssay]:
        """The essays of a batch in position order, ids and anchor grades only (a batch of
        10,000 full-length essays holds 40 MB of text that scoring does not need)."""
        rows = await self._session.execute(
            select(cj_essays.c.essay_id, cj_essays.c.anchor_grade)
            .where(cj_essays.c.batch_id == batch_id)
            .order_by(cj_essays.c.position)
        )
        return [ScoredEssay(essay_id, anchor_grade) for essay_id, anchor_grade in rows]

    async def count(self, batch_id: UUID) -> int:
        """How many essays (anchors included) a batch has, without reading them."""
        result = await self._session.execute(
            select(func.count()).select_from(cj_essays).where(cj_essays.c.batch_id == batch_id)
        )
        return int(result.scalar_one())

    async def save_scores(self, batch_id: UUID, rankings: Sequence[EssayRanking]) -> None:
        """Store the final scores of a batch."""
        if not rankings:
            return
        statement = insert(cj_scores)
        statement = statement.on_conflict_do_update(
            index_elements=[cj_scores.c.batch_id, cj_scores.c.essay_id],
            set_={
                "rank": statement.excluded.rank,
                "score": statement.excluded.score,
                "standard_error": statement.excluded.standard_error,
                "comparisons": statement.excluded.comparisons,
                "wins": statement.excluded.wins,
            },
        )
        await self._session.execute(
            statement,
            [
                {
                    "batch_id": batch_id,
                    "essay_id": r.essay_id,
                    "rank": r.rank,
                    "score": r.score,
                    "standard_error": r.standard_error,
                    "comparisons": r.comparisons,
                    "wins": r.wins,
                }
                for r in rankings
            ],
        )


class PostgresPairs:
    """The comparison pairs of batches, through one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch_id: UUID, wave: int, pairs: Sequence[NewPair]) -> None:
        """Insert the pairs of a planning step."""
        if not pairs:
            return
        await self._session.execute(
            cj_pairs.insert(),
            [
                {
                    "id": p.id,
                    "batch_id": batch_id,
                    "wave": wave,
                    "essay_a": p.essay_a,
                    "essay_b": p.essay_b,
                    "request_id": p.request_id,
                    "status": PairStatus.PENDING.value,
                    "judge_kind": p.judge_kind,
                    "judge_id": p.judge_id,
                }
                for p in pairs
            ],
        )

    async def by_request(self, request_ids: Sequence[UUID]) -> dict[UUID, PairRecord]:
        """The current pair rows for request ids (a hedged pair under both of its ids)."""
        if not request_ids:
            return {}
        ids = _uuids("request_ids", request_ids)
        rows = (
            await self._session.execute(
                select(*_PAIR_COLUMNS).where(cj_pairs.c.request_id == any_(ids))
            )
        ).all()
        found = {row.request_id: _pair(row) for row in rows}
        if len(found) < len(request_ids):  # the others may be hedges (or orphans)
            hedged = (
                await self._session.execute(
                    select(cj_hedge_calls.c.request_id, *_PAIR_COLUMNS)
                    .join(cj_pairs, cj_pairs.c.id == cj_hedge_calls.c.pair_id)
                    .where(cj_hedge_calls.c.request_id == any_(ids))
                )
            ).all()
            for row in hedged:
                found.setdefault(row[0], _pair(row[1:]))
        return found

    async def outstanding(self, batch_id: UUID) -> tuple[list[PairRecord], set[UUID], float | None]:
        """A batch's pending pairs, the ids of those already hedged, and the median seconds from
        request to answer over its answered pairs (None before any)."""
        pending = (
            await self._session.execute(
                select(*_PAIR_COLUMNS).where(
                    cj_pairs.c.batch_id == batch_id,
                    cj_pairs.c.status == PairStatus.PENDING.value,
                    cj_pairs.c.judge_kind.is_(None),  # people's pairs are never hedged
                )
            )
        ).all()
        hedged = (
            await self._session.execute(
                select(cj_hedge_calls.c.pair_id)
                .where(cj_hedge_calls.c.batch_id == batch_id)
                .distinct()
            )
        ).scalars()
        seconds = func.extract("epoch", cj_pairs.c.answered_at - cj_pairs.c.requested_at)
        median = (
            await self._session.execute(
                select(func.percentile_cont(0.5).within_group(seconds)).where(
                    cj_pairs.c.batch_id == batch_id,
                    cj_pairs.c.status == PairStatus.COMPLETED.value,
                )
            )
        ).scalar_one()
        return (
            [_pair(row) for row in pending],
            set(hedged),
            float(median) if median is not None else None,
        )

    async def outcomes(self, batch_id: UUID, *, with_judges: bool = False) -> PairOutcomes:
        """Every pair of a batch as three columns, aggregated into arrays by the database (one
        row, decoded by asyncpg in C: 100,000 pairs are read in milliseconds, not a second of
        row objects on the event loop); with the judges' columns when asked."""
        row = (await self._session.execute(_PAIR_OUTCOMES, {"batch_id": batch_id})).one()
        human = judge = None
        if with_judges:
            judges = (await self._session.execute(_PAIR_JUDGES, {"batch_id": batch_id})).one()
            human = np.asarray(judges.human, dtype=np.bool_)
            judge = np.asarray(judges.judge, dtype=np.object_)
        return PairOutcomes(
            np.asarray(row.essay_a, dtype=np.int64),
            np.asarray(row.essay_b, dtype=np.int64),
            np.asarray(row.verdict, dtype=np.int8),
            # None entries (hard verdicts, unanswered pairs) become NaN.
            np.asarray(row.probability, dtype=np.float64) if row.any_probability else None,
            human=human,
            judge=judge,
        )

    async def release_human_pairs(self, batch_id: UUID, at: datetime) -> int:
        """Release a batch's unjudged, unsubmitted pairs given to people; how many."""
        released = await self._session.execute(
            _RELEASE_HUMAN_PAIRS, {"target_batch": batch_id, "at": at}
        )
        return len(released.all())

    async def save_answers(self, answers: Sequence[PairAnswer], answered_at: datetime) -> None:
        """Store outcomes of pending pairs."""
        if not answers:
            return
        await self._session.execute(
            _SAVE_ANSWERS,
            {
                "ids": [a.pair_id for a in answers],
                "statuses": [a.status.value for a in answers],
                "winners": [a.winner for a in answers],
                "errors": [a.error_code for a in answers],
                "probabilities": [a.probability_a_better for a in answers],
                "judges": [a.judge_id for a in answers],
                "answered_at": answered_at,
            },
        )

    async def reissue(self, reissues: Sequence[PairReissue], requested_at: datetime) -> None:
        """Give pairs new request ids (and count the attempt)."""
        if not reissues:
            return
        await self._session.execute(
            update(cj_pairs)
            .where(cj_pairs.c.id == bindparam("pair_id"))
            .values(
                request_id=bindparam("new_request_id"),
                attempts=cj_pairs.c.attempts + 1,
                requested_at=bindparam("at"),
            ),
            [
                {"pair_id": r.pair_id, "new_request_id": r.request_id, "at": requested_at}
                for r in reissues
            ],
            execution_options={"synchronize_session": False},
        )


class PostgresHedges:
    """The request ids of hedged pairs, through one session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, batch_id: UUID, hedges: Sequence[NewHedge], at: datetime) -> None:
        """Store both request ids of newly hedged pairs."""
        if not hedges:
            return
        await self._session.execute(
            cj_hedge_calls.insert(),
            [
                {
                    "request_id": request_id,
                    "pair_id": h.pair_id,
                    "batch_id": batch_id,
                    "hedge": hedge,
                    "requested_at": at,
                }
                for h in hedges
                for request_id, hedge in (
                    (h.outstanding_request_id, False),
                    (h.hedge_request_id, True),
                )
            ],
        )

    async def calls(self, request_ids: Sequence[UUID]) -> dict[UUID, list[HedgeCall]]:
        """Every request id of the hedged pairs among these request ids, by pair id."""
        if not request_ids:
            return {}
        hedged_pairs = select(cj_hedge_calls.c.pair_id).where(
            cj_hedge_calls.c.request_id == any_(_uuids("request_ids", request_ids))
        )
        rows = (
            await self._session.execute(
                select(
                    cj_hedge_calls.c.request_id,
                    cj_hedge_calls.c.pair_id,
                    cj_hedge_calls.c.hedge,
                    cj_hedge_calls.c.answered_at,
                ).where(cj_hedge_calls.c.pair_id.in_(hedged_pairs))
            )
        ).all()
        calls: dict[UUID, list[HedgeCall]] = {}
        for request_id, pair_id, hedge, answered_at in rows:
            calls.setdefault(pair_id, []).append(
                HedgeCall(request_id, pair_id, hedge, answered_at is not None)
            )
        return calls

    async def mark_answered(self, request_ids: Sequence[UUID], at: datetime) -> None:
        """Record that these request ids of hedged pairs have been answered."""
        if not request_ids:
            return
        await self._session.execute(
            update(cj_hedge_calls)
            .where(cj_hedge_calls.c.request_id == any_(_uuids("request_ids", request_ids)))
            .values(answered_at=at),
            execution_options={"synchronize_session": False},
        )


class PostgresUnitOfWork(SessionUnitOfWork):
    """One transaction with a store per area over its session."""

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.batches = PostgresBatches(session, self.before_commit)
        self.essays = PostgresEssays(session)
        self.pairs = PostgresPairs(session)
        self.hedges = PostgresHedges(session)
        self.essay_sets = PostgresEssaySets(session)
        self.lifecycle = PostgresTextLifecycle(session)
        self.human_judging = PostgresHumanJudging(session)
