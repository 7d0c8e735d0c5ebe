"""The ports of the application layer: every Protocol the use cases depend on, and the plain
records they exchange with the stores (read from or written to storage)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

from common_core.events.envelope import EventEnvelope
from submission_service.domain.assessments import (
    AssessmentDefinition,
    JobStatus,
    Module,
    Question,
    QuestionScore,
    ReferencePassage,
    ScoreStatus,
)
from submission_service.domain.identity import Identity
from submission_service.domain.webhooks import WebhookTarget


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One stored answer (a row of `assessment_responses`)."""

    id: UUID
    identity: Identity
    question_id: str
    module_slug: str
    learning_outcome_id: str | None
    content_id: str | None
    answer_text: str
    answer_metadata: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    locked: bool = False


class Keep(Enum):
    """The value of a field an update leaves as stored."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class ResponseEdit:
    """What an update of an answer sets; a field left at KEEP keeps its stored value (None
    clears the optional ones)."""

    answer_text: str | Keep = KEEP
    answer_metadata: dict[str, Any] | Keep = KEEP
    learning_outcome_id: str | Keep | None = KEEP
    content_id: str | Keep | None = KEEP
    completed_at: datetime | Keep | None = KEEP

    def changes(self) -> dict[str, Any]:
        """The fields this edit sets, by name."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: value for name, value in values.items() if value is not KEEP}


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """A rubric score of a response (a row of `assessment_scores`)."""

    id: UUID
    response_id: UUID
    score_data: dict[str, Any]
    model_id: str
    prompt_version: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ScoringJob:
    """An asynchronous rubric-scoring job (a row of `scoring_jobs`)."""

    id: UUID
    job_type: str
    status: JobStatus
    response_id: UUID
    assessment_id: UUID | None
    request_id: UUID | None  # None: the job sends no request (fusion, a skipped rag)
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # what a finished stage produced, for fusion and status


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """An attempt at an assessment definition by one identity."""

    id: UUID
    definition_id: str
    identity: Identity
    status: str
    created_at: datetime
    submitted_at: datetime | None = None
    completed_at: datetime | None = None
    result: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """One attempt to deliver a webhook payload."""

    attempt: int
    attempted_at: datetime
    succeeded: bool
    http_status: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A payload to deliver to one webhook, with every attempt made so far."""

    id: UUID
    webhook_id: UUID
    url: str
    secret: str | None  # None: the stored secret does not decrypt with the configured keys
    event: str
    payload: dict[str, Any]
    status: str
    attempt_count: int = 0
    attempts: list[DeliveryAttempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A registered callback URL of an assessment."""

    id: UUID
    assessment_id: UUID
    url: str
    created_at: datetime
    deliveries: list[WebhookDelivery] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetrievedPassage:
    """A reference passage found for a question and an answer, with its full-text rank."""

    passage_id: str
    kind: str
    text: str
    rank: float


class QuestionCatalog(Protocol):
    """Finds the shipped question an answer refers to (for the rubric and question text)."""

    def find_question(self, module_slug: str, question_id: str) -> tuple[Module, Question] | None:
        """The question, if any shipped definition has it."""
        ...


class DefinitionCatalog(Protocol):
    """The shipped assessment definitions."""

    def get(self, definition_id: str) -> AssessmentDefinition | None:
        """The definition with this id, if shipped."""
        ...

    def all(self) -> list[AssessmentDefinition]:
        """Every definition."""
        ...


@dataclass(frozen=True, slots=True)
class StoredReply:
    """A reply recorded under an idempotency key."""

    request_hash: str
    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class JobView:
    """A scoring job as shown in the status, with its effective state."""

    job: ScoringJob
    module_slug: str
    question_id: str


class Inbox(Protocol):
    """Consumed events, claimed once (de-duplication on event_id)."""

    async def claim(self, consumer: str, event_id: UUID) -> bool:
        """Record an event as processed by `consumer`; False when it already was."""
        ...


class ResponseStore(Protocol):
    """Answers, scoped by identity."""

    async def insert_response(self, record: ResponseRecord) -> ResponseRecord:
        """Store a new answer; returns it as stored."""
        ...

    async def response_for(self, identity: Identity, response_id: UUID) -> ResponseRecord | None:
        """The caller's own answer, locked for update; None if absent or someone else's."""
        ...

    async def response_by_id(self, response_id: UUID) -> ResponseRecord | None:
        """A response regardless of identity (for consumers, never for HTTP)."""
        ...

    async def update_response(self, response_id: UUID, edit: ResponseEdit) -> ResponseRecord:
        """Apply an edit to an answer; returns it as stored."""
        ...

    async def list_responses(
        self,
        identity: Identity,
        *,
        module_slug: str | None,
        question_id: str | None,
        limit: int,
    ) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
        """The caller's answers, newest first, each with its scores."""
        ...

    async def claim_responses(self, anonymous_token: UUID, user_id: str) -> tuple[int, int]:
        """Move the token's answers to the user unless the user answered the question already."""
        ...


class ScoringStore(Protocol):
    """Scoring jobs and the rubric scores they produce."""

    async def insert_job(self, job: ScoringJob, *, request_event_id: UUID | None) -> None:
        """Store a new scoring job (without a request event when it sends no request)."""
        ...

    async def job_for_request(self, request_id: UUID) -> ScoringJob | None:
        """The job a rubric request belongs to, locked for update."""
        ...

    async def finish_job(
        self,
        job_id: UUID,
        status: JobStatus,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        """Move a job to a terminal state, with its error or result."""
        ...

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
        """Store a rubric score of a response."""
        ...

    async def unfinished_jobs(self, assessment_id: UUID) -> int:
        """How many of the assessment's jobs are not terminal."""
        ...

    async def jobs_of(self, assessment_id: UUID) -> list[JobView]:
        """The assessment's jobs; a queued job whose request the outbox relay delivered to
        Kafka shows `in_progress`."""
        ...

    async def jobs_for_response(self, assessment_id: UUID, response_id: UUID) -> list[ScoringJob]:
        """The stage jobs (gpt, rag, fusion) of one essay answer of an assessment (read under
        the assessment's lock)."""
        ...


class ReferenceStore(Protocol):
    """Course reference passages in full-text search."""

    async def replace_passages(self, definition_id: str, passages: list[ReferencePassage]) -> None:
        """Make the stored passages of a definition exactly these."""
        ...

    async def retrieve_passages(
        self, definition_id: str, question_id: str, terms: list[str], limit: int
    ) -> list[RetrievedPassage]:
        """The question's passages best matching the terms (or its first ones when none does)."""
        ...


class AssessmentStore(Protocol):
    """Assessments, their score records, locks and idempotency keys."""

    async def insert_assessment(self, record: AssessmentRecord) -> None:
        """Store a new attempt."""
        ...

    async def assessment_for(
        self, identity: Identity, assessment_id: UUID, *, lock: bool = False
    ) -> AssessmentRecord | None:
        """The caller's own assessment; None if absent or someone else's."""
        ...

    async def lock_assessment(self, assessment_id: UUID) -> AssessmentRecord | None:
        """The assessment, locked for update (serialises finalisation)."""
        ...

    async def lock_idempotency_key(self, identity_key: str, key: str) -> None:
        """Serialise concurrent requests with the same key (transaction-scoped lock)."""
        ...

    async def stored_reply(self, identity_key: str, key: str) -> StoredReply | None:
        """The reply recorded under this key, if any."""
        ...

    async def store_reply(
        self, identity_key: str, key: str, operation: str, reply: StoredReply
    ) -> None:
        """Record a reply under this key."""
        ...

    async def latest_responses(
        self, identity: Identity, module_slugs: list[str]
    ) -> dict[tuple[str, str], ResponseRecord]:
        """The newest answer per (module, question) of the caller in these modules."""
        ...

    async def lock_responses(self, assessment_id: UUID, response_ids: list[UUID]) -> None:
        """Lock answers against further edits."""
        ...

    async def insert_score_records(self, assessment_id: UUID, scores: list[QuestionScore]) -> None:
        """Store the per-question score records."""
        ...

    async def attach_job(self, assessment_id: UUID, response_id: UUID, job_id: UUID) -> None:
        """Link the pending essay score record of a response to its job."""
        ...

    async def mark_submitted(self, assessment_id: UUID, submitted_at: datetime) -> None:
        """Mark the assessment submitted."""
        ...

    async def update_score_record(
        self,
        assessment_id: UUID,
        job_id: UUID,
        *,
        status: ScoreStatus,
        score: float | None,
        detail: dict[str, Any],
    ) -> None:
        """Update the assessment score record that waited for this job."""
        ...

    async def score_records(self, assessment_id: UUID) -> list[QuestionScore]:
        """Every score record of an assessment."""
        ...

    async def complete_assessment(
        self, assessment_id: UUID, result: dict[str, Any], completed_at: datetime
    ) -> None:
        """Store the fused result and mark the assessment completed."""
        ...


class HostResolver(Protocol):
    """Resolves a host name to its IP addresses."""

    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address the host resolves to; raises OSError when it does not resolve."""
        ...


class WebhookSender(Protocol):
    """POSTs a body to a resolved target and reports the HTTP status."""

    async def post(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> int:
        """The response status code; raises on transport failure.

        Connects only to `target.addresses` (never resolves the host again), sends the URL's
        own Host header and, for https, its host name as TLS server name (SNI and certificate
        check), and follows no redirect."""
        ...


class DeliveryQueue(Protocol):
    """The delivery queue as the dispatcher sees it; each call runs in a unit of work the
    dispatcher commits (the lease before the sending, each attempt once made)."""

    async def lease_due(self, limit: int, lease_seconds: float) -> list[WebhookDelivery]:
        """Pending deliveries that are due, leased so other dispatchers skip them for a while."""
        ...

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
        """Record an attempt and the delivery's new state; returns the attempt number."""
        ...


class WebhookStore(DeliveryQueue, Protocol):
    """Webhook rows: registration and the delivery queue."""

    async def insert_webhook(
        self, webhook_id: UUID, assessment_id: UUID, url: str, secret: str
    ) -> None:
        """Store a registered webhook."""
        ...

    async def enqueue_delivery(self, webhook_id: UUID, event: str, payload: dict[str, Any]) -> None:
        """Create one pending delivery for one webhook."""
        ...

    async def enqueue_deliveries(
        self, assessment_id: UUID, event: str, payload: dict[str, Any]
    ) -> int:
        """Create a pending delivery for every webhook of the assessment; returns how many."""
        ...

    async def webhooks_of(self, assessment_id: UUID) -> list[WebhookRecord]:
        """Registered webhooks with their deliveries and attempts."""
        ...


class Outbox(Protocol):
    """The transaction's outbox: staged events are written with the commit."""

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event in this transaction's outbox."""
        ...


class UnitOfWork(Outbox, Protocol):
    """One transaction with a store per area. The entrypoint opens it
    (`async with transactions() as uow:`), which commits when the block ends normally and rolls
    back when it raises; use cases never commit."""

    @property
    def inbox(self) -> Inbox:
        """Consumed events, claimed once."""
        ...

    @property
    def responses(self) -> ResponseStore:
        """Answers."""
        ...

    @property
    def scoring(self) -> ScoringStore:
        """Scoring jobs and scores."""
        ...

    @property
    def assessments(self) -> AssessmentStore:
        """Assessments and their score records."""
        ...

    @property
    def webhooks(self) -> WebhookStore:
        """Webhooks and their delivery queue."""
        ...

    @property
    def reference(self) -> ReferenceStore:
        """Reference passages."""
        ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed (metrics and logs of what it did)."""
        ...


class Transactions(Protocol):
    """Opens units of work: each call is one transaction."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work, committed when the block ends normally, rolled back when it raises."""
        ...
