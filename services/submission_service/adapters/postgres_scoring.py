"""Scoring jobs and rubric scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime.outbox import event_outbox
from submission_service.adapters.tables import assessment_responses, assessment_scores, scoring_jobs
from submission_service.application.ports import JobView, ScoringJob
from submission_service.domain.assessments import JobStatus


def job_record(row: Row[Any]) -> ScoringJob:
    """A `scoring_jobs` row as a record."""
    return ScoringJob(
        id=row.id,
        job_type=row.job_type,
        status=JobStatus(row.status),
        response_id=row.response_id,
        assessment_id=row.assessment_id,
        request_id=row.request_id,
        error=row.error,
        result=row.result,
    )


class PostgresScoring:
    """Scoring jobs and rubric scores (`scoring_jobs`, `assessment_scores`)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_job(self, job: ScoringJob, *, request_event_id: UUID | None) -> None:
        """Store a new scoring job."""
        await self._session.execute(
            scoring_jobs.insert().values(
                id=job.id,
                job_type=job.job_type,
                status=job.status.value,
                response_id=job.response_id,
                assessment_id=job.assessment_id,
                request_id=job.request_id,
                request_event_id=request_event_id,
                error=job.error,
                result=job.result,
            )
        )

    async def jobs_for_response(self, assessment_id: UUID, response_id: UUID) -> list[ScoringJob]:
        """The stage jobs of one essay answer of an assessment. Not locked: the caller holds the
        assessment's lock, and locking sibling jobs after it could deadlock with a transaction
        that holds one of them (`job_for_request`) and waits for the assessment."""
        rows = (
            await self._session.execute(
                select(scoring_jobs)
                .where(
                    scoring_jobs.c.assessment_id == assessment_id,
                    scoring_jobs.c.response_id == response_id,
                )
                .order_by(scoring_jobs.c.created_at, scoring_jobs.c.id)
            )
        ).all()
        return [job_record(r) for r in rows]

    async def job_for_request(self, request_id: UUID) -> ScoringJob | None:
        """The job of a rubric request, locked."""
        row = (
            await self._session.execute(
                select(scoring_jobs)
                .where(scoring_jobs.c.request_id == request_id)
                .with_for_update()
            )
        ).first()
        return job_record(row) if row is not None else None

    async def finish_job(
        self,
        job_id: UUID,
        status: JobStatus,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Move a job to a terminal state."""
        await self._session.execute(
            update(scoring_jobs)
            .where(scoring_jobs.c.id == job_id)
            .values(status=status.value, error=error, result=result, updated_at=func.now())
        )

    async def insert_score(
        self,
        *,
        score_id: UUID,
        response_id: UUID,
        score_data: dict[str, Any],
        model_id: str,
        prompt_version: str,
        created_at: datetime,
    ) -> None:
        """Store a rubric score."""
        await self._session.execute(
            assessment_scores.insert().values(
                id=score_id,
                response_id=response_id,
                score_data=score_data,
                model_id=model_id,
                prompt_version=prompt_version,
                created_at=created_at,
            )
        )

    async def unfinished_jobs(self, assessment_id: UUID) -> int:
        """Jobs of the assessment not yet terminal."""
        count = (
            await self._session.execute(
                select(func.count()).where(
                    scoring_jobs.c.assessment_id == assessment_id,
                    scoring_jobs.c.status.notin_([s.value for s in JobStatus if s.is_terminal]),
                )
            )
        ).scalar_one()
        return int(count)

    async def jobs_of(self, assessment_id: UUID) -> list[JobView]:
        """Jobs with their effective state: a queued job whose request the outbox relay has
        delivered to Kafka (its outbox row published, or already pruned) is in progress."""
        published = scoring_jobs.c.request_event_id.is_not(None) & or_(
            ~exists().where(event_outbox.c.event_id == scoring_jobs.c.request_event_id),
            exists().where(
                and_(
                    event_outbox.c.event_id == scoring_jobs.c.request_event_id,
                    event_outbox.c.published_at.is_not(None),
                )
            ),
        )
        rows = (
            await self._session.execute(
                select(
                    scoring_jobs,
                    published.label("published"),
                    assessment_responses.c.module_slug,
                    assessment_responses.c.question_id,
                )
                .join(assessment_responses, assessment_responses.c.id == scoring_jobs.c.response_id)
                .where(scoring_jobs.c.assessment_id == assessment_id)
                .order_by(scoring_jobs.c.created_at, scoring_jobs.c.id)
            )
        ).all()
        views = []
        for r in rows:
            job = job_record(r)
            if job.status is JobStatus.QUEUED and r.published:
                job = ScoringJob(
                    id=job.id,
                    job_type=job.job_type,
                    status=JobStatus.IN_PROGRESS,
                    response_id=job.response_id,
                    assessment_id=job.assessment_id,
                    request_id=job.request_id,
                    error=job.error,
                    result=job.result,
                )
            views.append(JobView(job=job, module_slug=r.module_slug, question_id=r.question_id))
        return views
