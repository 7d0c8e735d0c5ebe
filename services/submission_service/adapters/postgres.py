"""PostgreSQL implementation of the stores: one unit of work per request or message batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel
from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from common_core.events.envelope import new_event
from common_core.runtime import inbox
from common_core.runtime.outbox import add_to_outbox, event_outbox
from common_core.topics import Topic, topic_name
from submission_service.adapters.tables import (
    assessment_responses,
    assessment_score_records,
    assessment_scores,
    assessments,
    idempotency_keys,
    response_locks,
    scoring_jobs,
    webhook_deliveries,
    webhook_delivery_attempts,
    webhooks,
)
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.application.ports import (
    AssessmentRecord,
    DeliveryAttempt,
    JobView,
    ResponseRecord,
    ScoreRecord,
    ScoringJob,
    StoredReply,
    WebhookDelivery,
    WebhookRecord,
)
from submission_service.domain.assessments import (
    JobStatus,
    QuestionScore,
    QuestionType,
    ScoreStatus,
)
from submission_service.domain.identity import Identity

SOURCE_SERVICE = "submission_service"


def _owned_by(table: Any, identity: Identity) -> Any:
    if identity.user_id is not None:
        return table.c.user_id == identity.user_id
    return table.c.anonymous_token == identity.anonymous_token


def _identity(row: Row[Any]) -> Identity:
    return Identity(user_id=row.user_id, anonymous_token=row.anonymous_token)


def _response(row: Any, *, locked: bool = False) -> ResponseRecord:
    return ResponseRecord(
        id=row.id,
        identity=_identity(row),
        question_id=row.question_id,
        module_slug=row.module_slug,
        learning_outcome_id=row.learning_outcome_id,
        content_id=row.content_id,
        answer_text=row.answer_text,
        answer_metadata=dict(row.answer_metadata or {}),
        created_at=row.created_at,
        completed_at=row.completed_at,
        locked=locked,
    )


def _assessment(row: Row[Any]) -> AssessmentRecord:
    return AssessmentRecord(
        id=row.id,
        definition_id=row.definition_id,
        identity=_identity(row),
        status=row.status,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        completed_at=row.completed_at,
        result=row.result,
    )


def _job(row: Row[Any]) -> ScoringJob:
    return ScoringJob(
        id=row.id,
        job_type=row.job_type,
        status=JobStatus(row.status),
        response_id=row.response_id,
        assessment_id=row.assessment_id,
        request_id=row.request_id,
        error=row.error,
    )


class PostgresUnitOfWork:
    """Every store Protocol of the application layer over one AsyncSession (one transaction)."""

    def __init__(
        self, session: AsyncSession, *, topic_prefix: str, secret_box: WebhookSecretBox
    ) -> None:
        self._session = session
        self._topic_prefix = topic_prefix
        self._secret_box = secret_box

    async def commit(self) -> None:
        """Commit the transaction."""
        await self._session.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        await self._session.rollback()

    async def __aenter__(self) -> PostgresUnitOfWork:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Commit when the block ended normally, roll back when it raised."""
        if exc is None:
            await self.commit()
        else:
            await self.rollback()

    # events ---------------------------------------------------------------------------------

    async def stage_event(
        self, topic: Topic, payload: BaseModel, *, key: str, correlation_id: UUID
    ) -> UUID:
        """Stage an event in the outbox, in this transaction."""
        name = topic_name(topic, self._topic_prefix)
        envelope = new_event(
            name, payload, source_service=SOURCE_SERVICE, correlation_id=correlation_id
        )
        await add_to_outbox(self._session, topic=name, envelope=envelope, key=key)
        return envelope.event_id

    async def claim_event(self, consumer: str, event_id: UUID) -> bool:
        """De-duplicate a consumed event on its event_id."""
        return await inbox.claim_event(self._session, consumer=consumer, event_id=event_id)

    # responses ------------------------------------------------------------------------------

    async def insert_response(self, record: ResponseRecord) -> ResponseRecord:
        """Store a new answer."""
        row = (
            await self._session.execute(
                assessment_responses.insert()
                .values(
                    id=record.id,
                    user_id=record.identity.user_id,
                    anonymous_token=record.identity.anonymous_token,
                    question_id=record.question_id,
                    module_slug=record.module_slug,
                    learning_outcome_id=record.learning_outcome_id,
                    content_id=record.content_id,
                    answer_text=record.answer_text,
                    answer_metadata=record.answer_metadata,
                    completed_at=record.completed_at,
                )
                .returning(*assessment_responses.c)
            )
        ).one()
        return _response(row)

    async def response_for(self, identity: Identity, response_id: UUID) -> ResponseRecord | None:
        """The caller's own answer, locked for update."""
        locked = exists().where(response_locks.c.response_id == assessment_responses.c.id)
        row = (
            await self._session.execute(
                select(*assessment_responses.c, locked.label("locked"))
                .where(
                    assessment_responses.c.id == response_id,
                    _owned_by(assessment_responses, identity),
                )
                .with_for_update(of=assessment_responses)
            )
        ).first()
        return _response(row, locked=bool(row.locked)) if row is not None else None

    async def response_by_id(self, response_id: UUID) -> ResponseRecord | None:
        """Any answer by id (consumers only)."""
        row = (
            await self._session.execute(
                select(assessment_responses).where(assessment_responses.c.id == response_id)
            )
        ).first()
        return _response(row) if row is not None else None

    async def update_response(self, response_id: UUID, changes: dict[str, Any]) -> ResponseRecord:
        """Apply column changes."""
        row = (
            await self._session.execute(
                update(assessment_responses)
                .where(assessment_responses.c.id == response_id)
                .values(**changes)
                .returning(*assessment_responses.c)
            )
        ).one()
        return _response(row)

    async def list_responses(
        self,
        identity: Identity,
        *,
        module_slug: str | None,
        question_id: str | None,
        limit: int,
    ) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
        """The caller's answers, newest first, with scores."""
        query = select(assessment_responses).where(_owned_by(assessment_responses, identity))
        if module_slug is not None:
            query = query.where(assessment_responses.c.module_slug == module_slug)
        if question_id is not None:
            query = query.where(assessment_responses.c.question_id == question_id)
        rows = (
            await self._session.execute(
                query.order_by(
                    assessment_responses.c.created_at.desc(), assessment_responses.c.id.desc()
                ).limit(limit)
            )
        ).all()
        ids = [r.id for r in rows]
        scores: dict[UUID, list[ScoreRecord]] = {i: [] for i in ids}
        if ids:
            score_rows = (
                await self._session.execute(
                    select(assessment_scores)
                    .where(assessment_scores.c.response_id.in_(ids))
                    .order_by(assessment_scores.c.created_at.desc())
                )
            ).all()
            for s in score_rows:
                scores[s.response_id].append(
                    ScoreRecord(
                        id=s.id,
                        response_id=s.response_id,
                        score_data=s.score_data,
                        model_id=s.model_id,
                        prompt_version=s.prompt_version,
                        created_at=s.created_at,
                    )
                )
        return [(_response(r), scores[r.id]) for r in rows]

    async def claim_responses(self, anonymous_token: UUID, user_id: str) -> tuple[int, int]:
        """Move the token's answers to the user, skipping questions the user already answered."""
        mine = assessment_responses.alias("mine")
        already = exists().where(
            mine.c.user_id == user_id,
            mine.c.module_slug == assessment_responses.c.module_slug,
            mine.c.question_id == assessment_responses.c.question_id,
        )
        total = (
            await self._session.execute(
                select(func.count()).where(
                    assessment_responses.c.anonymous_token == anonymous_token
                )
            )
        ).scalar_one()
        moved = await self._session.execute(
            update(assessment_responses)
            .where(assessment_responses.c.anonymous_token == anonymous_token, ~already)
            .values(user_id=user_id, anonymous_token=None)
        )
        if not isinstance(moved, CursorResult):  # an UPDATE always answers with one
            raise TypeError(f"an UPDATE answered with {type(moved).__name__}")
        claimed = moved.rowcount
        return claimed, int(total) - claimed

    # scoring jobs and scores ----------------------------------------------------------------

    async def insert_job(self, job: ScoringJob, *, request_event_id: UUID) -> None:
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
            )
        )

    async def job_for_request(self, request_id: UUID) -> ScoringJob | None:
        """The job of a rubric request, locked."""
        row = (
            await self._session.execute(
                select(scoring_jobs)
                .where(scoring_jobs.c.request_id == request_id)
                .with_for_update()
            )
        ).first()
        return _job(row) if row is not None else None

    async def finish_job(
        self, job_id: UUID, status: JobStatus, error: dict[str, Any] | None = None
    ) -> None:
        """Move a job to a terminal state."""
        await self._session.execute(
            update(scoring_jobs)
            .where(scoring_jobs.c.id == job_id)
            .values(status=status.value, error=error, updated_at=func.now())
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

    # assessments ----------------------------------------------------------------------------

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
            assessments.c.id == assessment_id, _owned_by(assessments, identity)
        )
        if lock:
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        return _assessment(row) if row is not None else None

    async def lock_assessment(self, assessment_id: UUID) -> AssessmentRecord | None:
        """The assessment, locked."""
        row = (
            await self._session.execute(
                select(assessments).where(assessments.c.id == assessment_id).with_for_update()
            )
        ).first()
        return _assessment(row) if row is not None else None

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
        """Newest answer per (module, question); every candidate row is locked against edits."""
        rows = (
            await self._session.execute(
                select(assessment_responses)
                .where(
                    _owned_by(assessment_responses, identity),
                    assessment_responses.c.module_slug.in_(module_slugs),
                )
                .order_by(
                    assessment_responses.c.created_at.desc(), assessment_responses.c.id.desc()
                )
                .with_for_update()
            )
        ).all()
        latest: dict[tuple[str, str], ResponseRecord] = {}
        for row in rows:
            latest.setdefault((row.module_slug, row.question_id), _response(row))
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

    async def unfinished_jobs(self, assessment_id: UUID) -> int:
        """Jobs of the assessment not yet terminal."""
        count = (
            await self._session.execute(
                select(func.count()).where(
                    scoring_jobs.c.assessment_id == assessment_id,
                    scoring_jobs.c.status.notin_(
                        [JobStatus.COMPLETED.value, JobStatus.FAILED.value]
                    ),
                )
            )
        ).scalar_one()
        return int(count)

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

    async def jobs_of(self, assessment_id: UUID) -> list[JobView]:
        """Jobs with their effective state (queued jobs already published are in progress)."""
        published = or_(
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
            job = _job(r)
            if job.status is JobStatus.QUEUED and r.published:
                job = ScoringJob(
                    id=job.id,
                    job_type=job.job_type,
                    status=JobStatus.IN_PROGRESS,
                    response_id=job.response_id,
                    assessment_id=job.assessment_id,
                    request_id=job.request_id,
                    error=job.error,
                )
            views.append(JobView(job=job, module_slug=r.module_slug, question_id=r.question_id))
        return views

    # webhooks -------------------------------------------------------------------------------

    async def insert_webhook(
        self, webhook_id: UUID, assessment_id: UUID, url: str, secret: str
    ) -> None:
        """Store a webhook; its secret only as ciphertext."""
        await self._session.execute(
            webhooks.insert().values(
                id=webhook_id,
                assessment_id=assessment_id,
                url=url,
                secret_ciphertext=self._secret_box.encrypt(secret),
            )
        )

    async def enqueue_delivery(self, webhook_id: UUID, event: str, payload: dict[str, Any]) -> None:
        """One pending delivery."""
        await self._session.execute(
            webhook_deliveries.insert().values(
                id=uuid4(), webhook_id=webhook_id, event=event, payload=payload, status="pending"
            )
        )

    async def enqueue_deliveries(
        self, assessment_id: UUID, event: str, payload: dict[str, Any]
    ) -> int:
        """A pending delivery for each webhook of the assessment."""
        ids = (
            (
                await self._session.execute(
                    select(webhooks.c.id).where(webhooks.c.assessment_id == assessment_id)
                )
            )
            .scalars()
            .all()
        )
        for webhook_id in ids:
            await self.enqueue_delivery(webhook_id, event, payload)
        return len(ids)

    async def webhooks_of(self, assessment_id: UUID) -> list[WebhookRecord]:
        """Webhooks with deliveries and attempts."""
        hooks = (
            await self._session.execute(
                select(webhooks)
                .where(webhooks.c.assessment_id == assessment_id)
                .order_by(webhooks.c.created_at)
            )
        ).all()
        if not hooks:
            return []
        deliveries = (
            await self._session.execute(
                select(webhook_deliveries)
                .where(webhook_deliveries.c.webhook_id.in_([h.id for h in hooks]))
                .order_by(webhook_deliveries.c.created_at)
            )
        ).all()
        attempts = (
            (
                await self._session.execute(
                    select(webhook_delivery_attempts)
                    .where(webhook_delivery_attempts.c.delivery_id.in_([d.id for d in deliveries]))
                    .order_by(webhook_delivery_attempts.c.id)
                )
            ).all()
            if deliveries
            else []
        )
        by_delivery: dict[UUID, list[DeliveryAttempt]] = {}
        for a in attempts:
            by_delivery.setdefault(a.delivery_id, []).append(
                DeliveryAttempt(a.attempt, a.attempted_at, a.succeeded, a.http_status, a.error)
            )
        secrets = {h.id: self._secret_box.decrypt(h.secret_ciphertext) for h in hooks}
        urls = {h.id: h.url for h in hooks}
        by_hook: dict[UUID, list[WebhookDelivery]] = {}
        for d in deliveries:
            by_hook.setdefault(d.webhook_id, []).append(
                WebhookDelivery(
                    id=d.id,
                    webhook_id=d.webhook_id,
                    url=urls[d.webhook_id],
                    secret=secrets[d.webhook_id],
                    event=d.event,
                    payload=d.payload,
                    status=d.status,
                    attempt_count=d.attempts,
                    attempts=by_delivery.get(d.id, []),
                )
            )
        return [
            WebhookRecord(h.id, h.assessment_id, h.url, h.created_at, by_hook.get(h.id, []))
            for h in hooks
        ]


class PostgresDeliveryQueue:
    """The webhook delivery queue; each call is its own short transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], secret_box: WebhookSecretBox
    ) -> None:
        self._sessions = sessions
        self._secret_box = secret_box

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        """Due pending deliveries, pushed `lease_seconds` into the future while in hand."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(webhook_deliveries, webhooks.c.url, webhooks.c.secret_ciphertext)
                    .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                    .where(
                        webhook_deliveries.c.status == "pending",
                        webhook_deliveries.c.next_attempt_at <= func.now(),
                    )
                    .order_by(webhook_deliveries.c.next_attempt_at)
                    .limit(limit)
                    .with_for_update(of=webhook_deliveries, skip_locked=True)
                )
            ).all()
            if rows:
                await session.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id.in_([r.id for r in rows]))
                    .values(next_attempt_at=datetime.now(UTC) + timedelta(seconds=lease_seconds))
                )
        return [
            WebhookDelivery(
                id=r.id,
                webhook_id=r.webhook_id,
                url=r.url,
                secret=self._secret_box.decrypt(r.secret_ciphertext),
                event=r.event,
                payload=r.payload,
                status=r.status,
                attempt_count=r.attempts,
            )
            for r in rows
        ]

    async def record_attempt(
        self,
        delivery_id: UUID,
        *,
        succeeded: bool,
        http_status: int | None,
        error: str | None,
        give_up: bool,
        retry_at: datetime | None,
    ) -> int:
        """Record the attempt and move the delivery on."""
        async with self._sessions.begin() as session:
            attempt = (
                await session.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id)
                    .values(attempts=webhook_deliveries.c.attempts + 1)
                    .returning(webhook_deliveries.c.attempts)
                )
            ).scalar_one()
            values: dict[str, Any] = {}
            if succeeded:
                values = {"status": "delivered", "delivered_at": func.now()}
            elif give_up:
                values = {"status": "failed"}
            elif retry_at is not None:
                values = {"next_attempt_at": retry_at}
            if values:
                await session.execute(
                    update(webhook_deliveries)
                    .where(webhook_deliveries.c.id == delivery_id)
                    .values(**values)
                )
            await session.execute(
                webhook_delivery_attempts.insert().values(
                    delivery_id=delivery_id,
                    attempt=attempt,
                    succeeded=succeeded,
                    http_status=http_status,
                    error=error,
                )
            )
        return int(attempt)


async def reencrypt_webhook_secrets(
    sessions: async_sessionmaker[AsyncSession], secret_box: WebhookSecretBox
) -> tuple[int, int]:
    """Re-encrypt stored secrets that are not under the primary key; (re-encrypted, unreadable)."""
    reencrypted = unreadable = 0
    async with sessions.begin() as session:
        rows = (
            await session.execute(
                select(webhooks.c.id, webhooks.c.secret_ciphertext).with_for_update()
            )
        ).all()
        for row in rows:
            if secret_box.decrypt(row.secret_ciphertext) is None:
                unreadable += 1
            elif secret_box.needs_rotation(row.secret_ciphertext):
                await session.execute(
                    update(webhooks)
                    .where(webhooks.c.id == row.id)
                    .values(secret_ciphertext=secret_box.rotate(row.secret_ciphertext))
                )
                reencrypted += 1
    return reencrypted, unreadable
