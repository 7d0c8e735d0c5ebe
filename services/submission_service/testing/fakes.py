"""In-memory fakes of the application's ports: a `FakeUnitOfWork` with the same stores per area as
`PostgresUnitOfWork`, over one `FakeTables`, `FakeTransactions` that opens them, and scripted
stand-ins for DNS (`ScriptedResolver`) and the webhook sender (`ScriptedSender`).

The contract suite (`tests/integration/adapters/test_store_contracts.py`) runs the same store
behaviours against these fakes and the PostgreSQL stores."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from common_core.events.envelope import EventEnvelope
from submission_service.application.ports import (
    AssessmentRecord,
    DeliveryAttempt,
    JobView,
    ResponseEdit,
    ResponseRecord,
    RetrievedPassage,
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
    ReferencePassage,
    ScoreStatus,
)
from submission_service.domain.identity import Identity
from submission_service.domain.webhooks import WebhookTarget

_WORD = re.compile(r"[^\W\d_]+")


@dataclass
class StoredScoreRecord:
    """An assessment score record with the job it waits for."""

    record: QuestionScore
    job_id: UUID | None = None


@dataclass
class StoredWebhook:
    """A registered webhook."""

    id: UUID
    assessment_id: UUID
    url: str
    secret: str | None  # None: stored under a key no longer configured
    created_at: datetime


@dataclass
class StoredDelivery:
    """A delivery with its state and attempts."""

    id: UUID
    webhook_id: UUID
    event: str
    payload: dict[str, Any]
    status: str = "pending"
    next_attempt_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    attempts: list[DeliveryAttempt] = field(default_factory=list)


@dataclass
class FakeTables:
    """Everything the fake stores hold: one in-memory database."""

    responses: dict[UUID, ResponseRecord] = field(default_factory=dict)
    response_locks: set[UUID] = field(default_factory=set)
    scores: list[ScoreRecord] = field(default_factory=list)
    jobs: dict[UUID, ScoringJob] = field(default_factory=dict)
    request_events: dict[UUID, UUID] = field(default_factory=dict)  # job id -> request event id
    assessments: dict[UUID, AssessmentRecord] = field(default_factory=dict)
    score_records: dict[UUID, list[StoredScoreRecord]] = field(default_factory=dict)
    replies: dict[tuple[str, str], StoredReply] = field(default_factory=dict)
    webhooks: dict[UUID, StoredWebhook] = field(default_factory=dict)
    deliveries: dict[UUID, StoredDelivery] = field(default_factory=dict)
    passages: dict[str, list[ReferencePassage]] = field(default_factory=dict)
    claimed: set[tuple[str, UUID]] = field(default_factory=set)
    outbox: list[tuple[str, EventEnvelope[Any], str | None]] = field(default_factory=list)
    published: set[UUID] = field(default_factory=set)  # event ids the relay delivered


class FakeInbox:
    """Consumed events claimed once."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def claim(self, consumer: str, event_id: UUID) -> bool:
        """False when the consumer claimed the event already."""
        if (consumer, event_id) in self._t.claimed:
            return False
        self._t.claimed.add((consumer, event_id))
        return True


class FakeResponses:
    """Answers, scoped by identity."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def insert_response(self, record: ResponseRecord) -> ResponseRecord:
        """Store a new answer, created now (as the database stamps it)."""
        stored = replace(record, created_at=datetime.now(UTC))
        self._t.responses[record.id] = stored
        return stored

    async def response_for(self, identity: Identity, response_id: UUID) -> ResponseRecord | None:
        """The caller's own answer, with whether it is locked."""
        record = self._t.responses.get(response_id)
        if record is None or record.identity != identity:
            return None
        return replace(record, locked=response_id in self._t.response_locks)

    async def response_by_id(self, response_id: UUID) -> ResponseRecord | None:
        """Any answer by id."""
        return self._t.responses.get(response_id)

    async def update_response(self, response_id: UUID, edit: ResponseEdit) -> ResponseRecord:
        """Apply an edit."""
        self._t.responses[response_id] = replace(self._t.responses[response_id], **edit.changes())
        return self._t.responses[response_id]

    async def list_responses(
        self,
        identity: Identity,
        *,
        module_slug: str | None,
        question_id: str | None,
        limit: int,
    ) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
        """The caller's answers, newest first, with their scores (newest first)."""
        mine = [
            r
            for r in self._t.responses.values()
            if r.identity == identity
            and module_slug in (None, r.module_slug)
            and question_id in (None, r.question_id)
        ]
        mine.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [
            (
                r,
                sorted(
                    (s for s in self._t.scores if s.response_id == r.id),
                    key=lambda s: s.created_at,
                    reverse=True,
                ),
            )
            for r in mine[:limit]
        ]

    async def claim_responses(self, anonymous_token: UUID, user_id: str) -> tuple[int, int]:
        """Move the token's answers to the user unless the user answered the question."""
        user = Identity(user_id=user_id)
        answered = {
            (r.module_slug, r.question_id) for r in self._t.responses.values() if r.identity == user
        }
        claimed = skipped = 0
        for rid, r in list(self._t.responses.items()):
            if r.identity.anonymous_token != anonymous_token:
                continue
            if (r.module_slug, r.question_id) in answered:
                skipped += 1
            else:
                self._t.responses[rid] = replace(r, identity=user)
                claimed += 1
        return claimed, skipped


class FakeScoring:
    """Scoring jobs and scores."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def insert_job(self, job: ScoringJob, *, request_event_id: UUID | None) -> None:
        """Store a new job."""
        self._t.jobs[job.id] = job
        if request_event_id is not None:
            self._t.request_events[job.id] = request_event_id

    async def job_for_request(self, request_id: UUID) -> ScoringJob | None:
        """The job of a rubric request."""
        return next((j for j in self._t.jobs.values() if j.request_id == request_id), None)

    async def finish_job(
        self,
        job_id: UUID,
        status: JobStatus,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Move a job to a terminal state."""
        self._t.jobs[job_id] = replace(
            self._t.jobs[job_id], status=status, error=error, result=result
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
        self._t.scores.append(
            ScoreRecord(score_id, response_id, score_data, model_id, prompt_version, created_at)
        )

    async def unfinished_jobs(self, assessment_id: UUID) -> int:
        """How many of the assessment's jobs are not terminal."""
        return sum(
            1
            for j in self._t.jobs.values()
            if j.assessment_id == assessment_id and not j.status.is_terminal
        )

    async def jobs_of(self, assessment_id: UUID) -> list[JobView]:
        """The assessment's jobs; a queued one whose request was published is in progress."""
        in_outbox = {envelope.event_id for _, envelope, _ in self._t.outbox}
        views = []
        for job in self._t.jobs.values():
            if job.assessment_id != assessment_id:
                continue
            event_id = self._t.request_events.get(job.id)
            # Delivered: its outbox row published, or already pruned.
            sent = event_id is not None and (
                event_id not in in_outbox or event_id in self._t.published
            )
            shown = (
                replace(job, status=JobStatus.IN_PROGRESS)
                if job.status is JobStatus.QUEUED and sent
                else job
            )
            response = self._t.responses[job.response_id]
            views.append(JobView(shown, response.module_slug, response.question_id))
        return views

    async def jobs_for_response(self, assessment_id: UUID, response_id: UUID) -> list[ScoringJob]:
        """The stage jobs of one essay answer of an assessment."""
        return [
            j
            for j in self._t.jobs.values()
            if j.assessment_id == assessment_id and j.response_id == response_id
        ]


class FakeAssessments:
    """Assessments, score records and idempotency keys."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def insert_assessment(self, record: AssessmentRecord) -> None:
        """Store a new attempt."""
        self._t.assessments[record.id] = record

    async def assessment_for(
        self, identity: Identity, assessment_id: UUID, *, lock: bool = False
    ) -> AssessmentRecord | None:
        """The caller's own assessment."""
        record = self._t.assessments.get(assessment_id)
        return record if record is not None and record.identity == identity else None

    async def lock_assessment(self, assessment_id: UUID) -> AssessmentRecord | None:
        """The assessment (one task at a time: nothing to lock)."""
        return self._t.assessments.get(assessment_id)

    async def lock_idempotency_key(self, identity_key: str, key: str) -> None:
        """Nothing to serialise in one task."""

    async def stored_reply(self, identity_key: str, key: str) -> StoredReply | None:
        """The reply stored under a key."""
        return self._t.replies.get((identity_key, key))

    async def store_reply(
        self, identity_key: str, key: str, operation: str, reply: StoredReply
    ) -> None:
        """Record a reply under a key."""
        self._t.replies[(identity_key, key)] = reply

    async def latest_responses(
        self, identity: Identity, module_slugs: list[str]
    ) -> dict[tuple[str, str], ResponseRecord]:
        """Newest answer per (module, question)."""
        latest: dict[tuple[str, str], ResponseRecord] = {}
        mine = [
            r
            for r in self._t.responses.values()
            if r.identity == identity and r.module_slug in module_slugs
        ]
        for r in sorted(mine, key=lambda r: (r.created_at, r.id), reverse=True):
            latest.setdefault((r.module_slug, r.question_id), r)
        return latest

    async def lock_responses(self, assessment_id: UUID, response_ids: list[UUID]) -> None:
        """Lock answers against edits."""
        self._t.response_locks.update(response_ids)

    async def insert_score_records(self, assessment_id: UUID, scores: list[QuestionScore]) -> None:
        """Store per-question score records."""
        self._t.score_records.setdefault(assessment_id, []).extend(
            StoredScoreRecord(s) for s in scores
        )

    async def attach_job(self, assessment_id: UUID, response_id: UUID, job_id: UUID) -> None:
        """Link an essay score record to its job."""
        for stored in self._t.score_records.get(assessment_id, []):
            essay = stored.record.score_type is QuestionType.ESSAY
            if essay and stored.record.response_id == str(response_id):
                stored.job_id = job_id

    async def mark_submitted(self, assessment_id: UUID, submitted_at: datetime) -> None:
        """Mark the assessment submitted."""
        record = self._t.assessments[assessment_id]
        self._t.assessments[assessment_id] = replace(
            record, status="submitted", submitted_at=submitted_at
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
        for stored in self._t.score_records.get(assessment_id, []):
            if stored.job_id == job_id:
                stored.record = replace(stored.record, status=status, score=score, detail=detail)

    async def score_records(self, assessment_id: UUID) -> list[QuestionScore]:
        """Every score record of an assessment, in insertion order."""
        return [s.record for s in self._t.score_records.get(assessment_id, [])]

    async def complete_assessment(
        self, assessment_id: UUID, result: dict[str, Any], completed_at: datetime
    ) -> None:
        """Store the fused result."""
        record = self._t.assessments[assessment_id]
        self._t.assessments[assessment_id] = replace(
            record, status="completed", result=result, completed_at=completed_at
        )


class FakeWebhooks:
    """Webhooks and their delivery queue."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def insert_webhook(
        self, webhook_id: UUID, assessment_id: UUID, url: str, secret: str
    ) -> None:
        """Store a webhook."""
        self._t.webhooks[webhook_id] = StoredWebhook(
            webhook_id, assessment_id, url, secret, datetime.now(UTC)
        )

    async def enqueue_delivery(self, webhook_id: UUID, event: str, payload: dict[str, Any]) -> None:
        """One pending delivery, due now."""
        delivery = StoredDelivery(uuid4(), webhook_id, event, payload)
        self._t.deliveries[delivery.id] = delivery

    async def enqueue_deliveries(
        self, assessment_id: UUID, event: str, payload: dict[str, Any]
    ) -> int:
        """A pending delivery for each webhook of the assessment."""
        hooks = [h for h in self._t.webhooks.values() if h.assessment_id == assessment_id]
        for hook in hooks:
            await self.enqueue_delivery(hook.id, event, payload)
        return len(hooks)

    async def webhooks_of(self, assessment_id: UUID) -> list[WebhookRecord]:
        """Webhooks with deliveries and attempts."""
        return [
            WebhookRecord(
                h.id,
                h.assessment_id,
                h.url,
                h.created_at,
                [self._delivery(d) for d in self._t.deliveries.values() if d.webhook_id == h.id],
            )
            for h in sorted(self._t.webhooks.values(), key=lambda h: h.created_at)
            if h.assessment_id == assessment_id
        ]

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        """Due pending deliveries, pushed `lease_seconds` into the future."""
        now = datetime.now(UTC)
        due = sorted(
            (d for d in self._t.deliveries.values() if d.status == "pending"),
            key=lambda d: d.next_attempt_at,
        )
        leased = [d for d in due if d.next_attempt_at <= now][:limit]
        for d in leased:
            d.next_attempt_at = now + timedelta(seconds=lease_seconds)
        return [dataclasses.replace(self._delivery(d), attempts=[]) for d in leased]

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
        delivery = self._t.deliveries[delivery_id]
        number = len(delivery.attempts) + 1
        delivery.attempts.append(
            DeliveryAttempt(number, datetime.now(UTC), succeeded, http_status, error)
        )
        if succeeded:
            delivery.status = "delivered"
        elif give_up:
            delivery.status = "failed"
        elif retry_at is not None:
            delivery.next_attempt_at = retry_at
        return number

    def _delivery(self, d: StoredDelivery) -> WebhookDelivery:
        hook = self._t.webhooks[d.webhook_id]
        return WebhookDelivery(
            id=d.id,
            webhook_id=d.webhook_id,
            url=hook.url,
            secret=hook.secret,
            event=d.event,
            payload=d.payload,
            status=d.status,
            attempt_count=len(d.attempts),
            attempts=list(d.attempts),
        )


class FakeReference:
    """Reference passages, matched by shared words instead of full-text search."""

    def __init__(self, tables: FakeTables) -> None:
        self._t = tables

    async def replace_passages(
        self, definition_id: str, passages: Sequence[ReferencePassage]
    ) -> None:
        """Make the stored passages of a definition exactly these."""
        self._t.passages[definition_id] = list(passages)

    async def retrieve_passages(
        self, definition_id: str, question_id: str, terms: Sequence[str], limit: int
    ) -> list[RetrievedPassage]:
        """The question's passages sharing most terms first; its first ones when none does."""
        mine = [p for p in self._t.passages.get(definition_id, []) if question_id in p.question_ids]
        wanted = {t.lower() for t in terms}
        ranked = [
            (len(wanted & set(_WORD.findall(p.text.lower()))), i, p) for i, p in enumerate(mine)
        ]
        matched = sorted((r for r in ranked if r[0] > 0), key=lambda r: (-r[0], r[1]))
        if matched:
            return [RetrievedPassage(p.id, p.kind.value, p.text, float(n)) for n, _, p in matched][
                :limit
            ]
        return [RetrievedPassage(p.id, p.kind.value, p.text, 0.0) for p in mine[:limit]]


class FakeUnitOfWork:
    """The application's `UnitOfWork` over `FakeTables`: the same stores per area as the
    PostgreSQL one. Staged events and after-commit actions wait for `commit`."""

    def __init__(self, tables: FakeTables | None = None) -> None:
        self.tables = tables if tables is not None else FakeTables()
        self.inbox = FakeInbox(self.tables)
        self.responses = FakeResponses(self.tables)
        self.scoring = FakeScoring(self.tables)
        self.assessments = FakeAssessments(self.tables)
        self.webhooks = FakeWebhooks(self.tables)
        self.reference = FakeReference(self.tables)
        self.staged: list[tuple[str, EventEnvelope[Any], str | None]] = []
        self._after_commit: list[Callable[[], None]] = []

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event in this unit of work's outbox."""
        self.staged.append((topic, envelope, key))

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` at commit."""
        self._after_commit.append(action)

    def commit(self) -> None:
        """Move the staged events to the outbox, then run the after-commit actions."""
        staged, self.staged = self.staged, []
        self.tables.outbox.extend(staged)
        actions, self._after_commit = self._after_commit, []
        for action in actions:
            action()


class FakeTransactions:
    """Opens `FakeUnitOfWork`s over one `FakeTables`: committed when the block ends normally; when
    it raises, the tables are restored as they were and nothing staged is kept."""

    def __init__(self, tables: FakeTables | None = None) -> None:
        self.tables = tables if tables is not None else FakeTables()
        self.commits = 0

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[FakeUnitOfWork]:
        """A unit of work over the tables."""
        before = copy.deepcopy(self.tables)
        uow = FakeUnitOfWork(self.tables)
        try:
            yield uow
        except BaseException:
            for name in (f.name for f in dataclasses.fields(FakeTables)):
                setattr(self.tables, name, getattr(before, name))
            raise
        uow.commit()
        self.commits += 1


@dataclass
class ScriptedResolver:
    """DNS stand-in: each lookup of a host gets its next scripted answer (the last repeats); an
    unscripted host does not resolve."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: dict[str, int] = field(default_factory=dict)

    def script(self, host: str, *answers: list[str]) -> ScriptedResolver:
        """Answer lookups of `host` with `answers` in order."""
        self.answers[host] = list(answers)
        self.lookups[host] = 0
        return self

    async def resolve(self, host: str, port: int) -> list[str]:
        """The host's next answer; OSError for a host without a script."""
        if host not in self.answers:
            raise OSError(f"{host} does not resolve")
        script, done = self.answers[host], self.lookups[host]
        self.lookups[host] = done + 1
        return script[min(done, len(script) - 1)]


@dataclass
class ScriptedSender:
    """Webhook sender stand-in: answers with the scripted statuses in order, records each POST."""

    statuses: list[int]
    sent: list[tuple[WebhookTarget, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> int:
        """Record the POST and answer with the next status."""
        self.sent.append((target, body, headers))
        return self.statuses.pop(0)
