"""Assessments: attempts, per-question score records, answer locks, idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from submission_service.adapters.postgres_responses import identity_of, owned_by, response_record
from submission_service.adapters.tables import (
    assessment_responses,
    assessment_score_records,
    assessments,
    idempotency_keys,
    response_locks,
)
from submission_service.application.ports import AssessmentRecord, ResponseRecord, StoredReply
from submission_service.domain.assessments import QuestionScore, QuestionType, ScoreStatus
from submission_service.domain.identity import Identity


def assessment_record(row: Row[Any]) -> AssessmentRecord:
    """An `assessments` row as a record."""
    return AssessmentRecord(
        id=row.id,
        definition_id=row.definition_id,
        identity=identity_of(row),
        status=row.status,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        completed_at=row.completed_at,
        result=row.result,
    )


class PostgresAssessments:
    """Attempts, their score records, answer locks and idempotency keys."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_assessment(self, record: AssessmentRecord) -> None:
        """Store a new attempt."""
        await self._session.execute(
            assessments.insert().values(
                id=record.id,
                definition_id=record.definition_id,
                user_id=record.identity.user_id,
                anonymous_token=record.identity.anonymous_token,
                status=record.status,
                created_at=record.created_at,
            )
        )

    async def assessment_for(
        self, identity: Identity, assessment_id: UUID, *, lock: bool = False
    ) -> AssessmentRecord | None:
        """The caller's own assessment."""
        query = select(assessments).where(
            assessments.c.id == assessment_id, owned_by(assessments, identity)
        )
        if lock:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return assessment_record(row) if row is not None else None

    async def lock_assessment(self, assessment_id: UUID) -> AssessmentRecord | None:
        """The assessment, locked."""
        row = (
            await self._session.execute(
                select(assessments).where(assessments.c.id == assessment_id).with_for_update()
            )
        ).first()
        return assessment_record(row) if row is not None else None

    async def lock_idempotency_key(self, identity_key: str, key: str) -> None:
        """Transaction-scoped advisory lock on (identity, key)."""
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"idem:{identity_key}:{key}"},
        )

    async def stored_reply(self, identity_key: str, key: str) -> StoredReply | None:
        """The reply stored under a key."""
        row = (
            await self._session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.identity_key == identity_key,
                    idempotency_keys.c.idempotency_key == key,
                )
            )
        ).first()
        if row is None:
            return None
        return StoredReply(row.request_hash, row.status_code, row.response_body)

    async def store_reply(
        self, identity_key: str, key: str, operation: str, reply: StoredReply
    ) -> None:
        """Record the reply under a key."""
        await self._session.execute(
            idempotency_keys.insert().values(
                identity_key=identity_key,
                idempotency_key=key,
                operation=operation,
                request_hash=reply.request_hash,
                status_code=reply.status_code,
                response_body=reply.body,
            )
        )

    async def latest_responses(
        self, identity: Identity, module_slugs: list[str]
    ) -> dict[tuple[str, str], ResponseRecord]:
        """Newest answer per (module, question); every candidate row is locked against edits.
        An answer whose text was removed (retention, erasure) is no longer one: re-checked on
        the locked row, so a purge committed while this waited for the lock excludes it."""
        rows = (
            await self._session.execute(
                select(assessment_responses)
                .where(
                    owned_by(assessment_responses, identity),
                    assessment_responses.c.module_slug.in_(module_slugs),
                    assessment_responses.c.text_removed_at.is_(None),
                )
                .order_by(
                    assessment_responses.c.created_at.desc(), assessment_responses.c.id.desc()
                )
                .with_for_update()
            )
        ).all()
        latest: dict[tuple[str, str], ResponseRecord] = {}
        for row in rows:
            latest.setdefault((row.module_slug, row.question_id), response_record(row))
        return latest

    async def lock_responses(self, assessment_id: UUID, response_ids: list[UUID]) -> None:
        """Lock answers against edits."""
        if not response_ids:
            return
        await self._session.execute(
            insert(response_locks)
            .values([{"response_id": r, "assessment_id": assessment_id} for r in response_ids])
            .on_conflict_do_nothing()
        )

    async def insert_score_records(self, assessment_id: UUID, scores: list[QuestionScore]) -> None:
        """Store per-question score records."""
        if not scores:
            return
        await self._session.execute(
            assessment_score_records.insert(),
            [
                {
                    "id": uuid4(),
                    "assessment_id": assessment_id,
                    "module_slug": s.module_slug,
                    "question_id": s.question_id,
                    "score_type": s.score_type.value,
                    "status": s.status.value,
                    "score": s.score,
                    "max_score": s.max_score,
                    "response_id": UUID(s.response_id) if s.response_id else None,
                    "detail": s.detail,
                }
                for s in scores
            ],
        )

    async def attach_job(self, assessment_id: UUID, response_id: UUID, job_id: UUID) -> None:
        """Link an essay score record to its job."""
        await self._session.execute(
            update(assessment_score_records)
            .where(
                assessment_score_records.c.assessment_id == assessment_id,
                assessment_score_records.c.response_id == response_id,
                assessment_score_records.c.score_type == QuestionType.ESSAY.value,
            )
            .values(job_id=job_id)
        )

    async def mark_submitted(self, assessment_id: UUID, submitted_at: datetime) -> None:
        """Mark the assessment submitted."""
        await self._session.execute(
            update(assessments)
            .where(assessments.c.id == assessment_id)
            .values(status="submitted", submitted_at=submitted_at)
        )

    async def update_score_record(
        self,
        assessment_id: UUID,
        job_id: UUID,
        *,
        status: ScoreStatus,
        score: float | None,
        detail: dict[str, Any],
    ) -> None:
        """Update the score record waiting for a job."""
        await self._session.execute(
            update(assessment_score_records)
            .where(
                assessment_score_records.c.assessment_id == assessment_id,
                assessment_score_records.c.job_id == job_id,
            )
            .values(status=status.value, score=score, detail=detail)
        )

    async def score_records(self, assessment_id: UUID) -> list[QuestionScore]:
        """Every score record of an assessment."""
        rows = (
            await self._session.execute(
                select(assessment_score_records)
                .where(assessment_score_records.c.assessment_id == assessment_id)
                .order_by(assessment_score_records.c.created_at, assessment_score_records.c.id)
            )
        ).all()
        return [
            QuestionScore(
                module_slug=r.module_slug,
                question_id=r.question_id,
                score_type=QuestionType(r.score_type),
                status=ScoreStatus(r.status),
                max_score=r.max_score,
                score=r.score,
                response_id=str(r.response_id) if r.response_id else None,
                detail=r.detail,
            )
            for r in rows
        ]

    async def complete_assessment(
        self, assessment_id: UUID, result: dict[str, Any], completed_at: datetime
    ) -> None:
        """Store the fused result."""
        await self._session.execute(
            update(assessments)
            .where(assessments.c.id == assessment_id)
            .values(status="completed", result=result, completed_at=completed_at)
        )
