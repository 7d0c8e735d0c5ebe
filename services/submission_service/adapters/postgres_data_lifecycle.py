"""Learner data lifecycle in PostgreSQL: purging finished answers' texts (retention) and erasing
one learner's texts and their copies (erasure), with the erasure audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime.outbox import event_outbox
from submission_service.adapters.postgres_responses import owned_by
from submission_service.adapters.postgres_scoring import job_record
from submission_service.adapters.tables import (
    assessment_responses,
    assessment_score_records,
    assessment_scores,
    assessments,
    idempotency_keys,
    learner_erasures,
    response_locks,
    scoring_jobs,
)
from submission_service.application.ports import ScoringJob
from submission_service.domain.assessments import JobStatus
from submission_service.domain.data_lifecycle import TextRemoval
from submission_service.domain.identity import Identity

_TERMINAL = tuple(s.value for s in JobStatus if s.is_terminal)


def _finished_before(cutoff: datetime) -> ColumnElement[bool]:
    """An answer whose scoring is over: no job of it still running, every assessment that uses
    it (by its lock or a score record) completed, and the latest of its completion, its jobs'
    last change and those assessments' completion before `cutoff` (a draft never finishes)."""
    r = assessment_responses.c
    job = scoring_jobs.alias("job")
    lock = response_locks.alias("lock")
    record = assessment_score_records.alias("record")
    by_lock = assessments.alias("by_lock")
    by_record = assessments.alias("by_record")
    locked_in = lock.join(by_lock, by_lock.c.id == lock.c.assessment_id)
    scored_in = record.join(by_record, by_record.c.id == record.c.assessment_id)
    finished_at = func.greatest(
        r.completed_at,
        select(func.max(job.c.updated_at)).where(job.c.response_id == r.id).scalar_subquery(),
        select(func.max(by_lock.c.completed_at))
        .select_from(locked_in)
        .where(lock.c.response_id == r.id)
        .scalar_subquery(),
        select(func.max(by_record.c.completed_at))
        .select_from(scored_in)
        .where(record.c.response_id == r.id)
        .scalar_subquery(),
    )
    return and_(
        r.text_removed_at.is_(None),
        r.created_at < cutoff,  # implied by the rest; lets the purge scan an index range
        ~exists().where(job.c.response_id == r.id, job.c.status.notin_(_TERMINAL)),
        ~exists(
            select(1)
            .select_from(locked_in)
            .where(lock.c.response_id == r.id, by_lock.c.status != "completed")
        ),
        ~exists(
            select(1)
            .select_from(scored_in)
            .where(record.c.response_id == r.id, by_record.c.status != "completed")
        ),
        finished_at < cutoff,
    )


def _rowcount(result: Result[Any]) -> int:
    if not isinstance(result, CursorResult):  # an UPDATE or DELETE always answers with one
        raise TypeError(f"a DML statement answered with {type(result).__name__}")
    return int(result.rowcount)


class PostgresLearnerData:
    """The learner-data lifecycle store (`LearnerDataStore`) over one session."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def purge_finished_texts(self, cutoff: datetime, limit: int) -> int:
        """Empty the text and metadata of up to `limit` answers finished before `cutoff`.

        The candidates are locked first (skipping rows another transaction holds, such as an
        assessment submission reading them); the update then checks them again with a fresh
        snapshot, so work committed meanwhile (a new scoring job) keeps an answer."""
        responses = assessment_responses
        ids = list(
            (
                await self._session.execute(
                    select(responses.c.id)
                    .where(_finished_before(cutoff))
                    # The partial index's order: the scan stops at `limit` finished answers.
                    .order_by(responses.c.created_at)
                    .limit(limit)
                    .with_for_update(of=responses, skip_locked=True)
                )
            ).scalars()
        )
        if not ids:
            return 0
        purged = await self._session.execute(
            update(responses)
            .where(responses.c.id.in_(ids), _finished_before(cutoff))
            .values(
                answer_text="",
                answer_metadata={},
                text_removed_at=func.now(),
                text_removed_by=TextRemoval.RETENTION.value,
            )
        )
        return _rowcount(purged)

    async def lock_subject(self, subject_hash: str) -> None:
        """Serialise erasures of one subject (transaction-scoped advisory lock)."""
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"erasure:{subject_hash}"},
        )

    async def lock_responses_of(self, identity: Identity) -> list[UUID]:
        """Every answer of the learner, locked for update; their ids."""
        rows = await self._session.execute(
            select(assessment_responses.c.id)
            .where(owned_by(assessment_responses, identity))
            .order_by(assessment_responses.c.id)
            .with_for_update()
        )
        return list(rows.scalars())

    async def lock_pending_requests(self, response_ids: list[UUID]) -> list[ScoringJob]:
        """The jobs of these answers waiting for a rubric result, locked for update."""
        if not response_ids:
            return []
        rows = await self._session.execute(
            select(scoring_jobs)
            .where(
                scoring_jobs.c.response_id.in_(response_ids),
                scoring_jobs.c.request_id.is_not(None),
                scoring_jobs.c.status.notin_(_TERMINAL),
            )
            .order_by(scoring_jobs.c.id)
            .with_for_update()
        )
        return [job_record(r) for r in rows]

    async def remove_answer_texts(self, response_ids: list[UUID]) -> int:
        """Empty the text and metadata of these answers and mark them erased; how many had any
        left (or were never marked)."""
        if not response_ids:
            return 0
        table = assessment_responses.c
        result = await self._session.execute(
            update(assessment_responses)
            .where(
                table.id.in_(response_ids),
                (table.answer_text != "")
                | (table.answer_metadata != cast(literal("{}"), JSONB))
                | table.text_removed_at.is_(None),
            )
            .values(
                answer_text="",
                answer_metadata={},
                text_removed_at=func.now(),
                text_removed_by=TextRemoval.ERASURE.value,
            )
        )
        return _rowcount(result)

    async def remove_score_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the LLM feedback kept in these answers' scores."""
        if not response_ids:
            return 0
        data = assessment_scores.c.score_data
        result = await self._session.execute(
            update(assessment_scores)
            .where(
                assessment_scores.c.response_id.in_(response_ids),
                func.coalesce(data["feedback"].astext, "") != "",
            )
            .values(score_data=data.op("||")(cast(literal('{"feedback": ""}'), JSONB)))
        )
        return _rowcount(result)

    async def remove_stage_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the LLM feedback kept in the results of these answers' scoring stages."""
        if not response_ids:
            return 0
        data = scoring_jobs.c.result
        result = await self._session.execute(
            update(scoring_jobs)
            .where(
                scoring_jobs.c.response_id.in_(response_ids),
                func.coalesce(data["feedback"].astext, "") != "",
            )
            .values(result=data.op("||")(cast(literal('{"feedback": ""}'), JSONB)))
        )
        return _rowcount(result)

    async def delete_outbox_copies(self, response_ids: list[UUID]) -> int:
        """Delete the outbox rows (published or not) keyed by these answers whose event carries
        an answer text: the rubric requests."""
        if not response_ids:
            return 0
        payload = cast(event_outbox.c.payload, JSONB)
        result = await self._session.execute(
            delete(event_outbox).where(
                event_outbox.c.message_key.in_([str(i) for i in response_ids]),
                payload["data"].has_key("answer_text"),
            )
        )
        return _rowcount(result)

    async def remove_outbox_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the feedback in the outbox rows of these answers' score events (published or
        not: an unpublished one still goes out, without the feedback)."""
        if not response_ids:
            return 0
        result = await self._session.execute(
            text(
                "UPDATE event_outbox"
                " SET payload = jsonb_set(payload::jsonb, '{data,feedback}', '\"\"')::text"
                " WHERE message_key = ANY(:keys)"
                " AND coalesce(payload::jsonb #>> '{data,feedback}', '') <> ''"
            ),
            {"keys": [str(i) for i in response_ids]},
        )
        return _rowcount(result)

    async def delete_idempotency_records(self, identity: Identity) -> int:
        """Delete the replies stored under the learner's idempotency keys."""
        result = await self._session.execute(
            delete(idempotency_keys).where(idempotency_keys.c.identity_key == identity.key)
        )
        return _rowcount(result)

    async def erased_before(self, subject_hash: str) -> bool:
        """True when an earlier erasure of this subject is on record."""
        found = await self._session.execute(
            select(exists().where(learner_erasures.c.subject_hash == subject_hash))
        )
        return bool(found.scalar_one())

    async def record_erasure(
        self,
        audit_id: UUID,
        *,
        subject_kind: str,
        subject_hash: str,
        operator_subject: str,
        erased: dict[str, int],
        already_erased: bool,
    ) -> None:
        """Write the audit row of an erasure request (counts and a hash: no text, no token)."""
        await self._session.execute(
            learner_erasures.insert().values(
                id=audit_id,
                subject_kind=subject_kind,
                subject_hash=subject_hash,
                operator_subject=operator_subject,
                erased=erased,
                already_erased=already_erased,
            )
        )
