"""The PostgreSQL unit of work: one transaction per request or message batch, composing the
stores of each area (`postgres_<area>.py`) over its session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime.unit_of_work import SessionUnitOfWork
from submission_service.adapters.postgres_assessments import PostgresAssessments
from submission_service.adapters.postgres_events import PostgresEvents
from submission_service.adapters.postgres_reference import PostgresReferencePassages
from submission_service.adapters.postgres_responses import PostgresResponses
from submission_service.adapters.postgres_scoring import PostgresScoring
from submission_service.adapters.postgres_webhooks import PostgresWebhooks
from submission_service.adapters.webhook_secrets import WebhookSecretBox


class PostgresUnitOfWork(SessionUnitOfWork):
    """Every store Protocol of the application layer over one AsyncSession (one transaction).

    The stores of each area share the session; their methods are this object's, so it is the
    `Stores` the use cases take."""

    def __init__(
        self, session: AsyncSession, *, topic_prefix: str, secret_box: WebhookSecretBox
    ) -> None:
        super().__init__(session)
        self.events = PostgresEvents(session, topic_prefix=topic_prefix)
        self.responses = PostgresResponses(session)
        self.scoring = PostgresScoring(session)
        self.assessments = PostgresAssessments(session)
        self.webhooks = PostgresWebhooks(session, secret_box)
        self.reference = PostgresReferencePassages(session)
        # events
        # The events store's stage_event (envelope built here) shadows the kernel's.
        self.stage_event = self.events.stage_event  # type: ignore[method-assign,assignment]
        self.claim_event = self.events.claim_event
        # responses
        self.insert_response = self.responses.insert_response
        self.response_for = self.responses.response_for
        self.response_by_id = self.responses.response_by_id
        self.update_response = self.responses.update_response
        self.list_responses = self.responses.list_responses
        self.claim_responses = self.responses.claim_responses
        # scoring jobs and scores
        self.insert_job = self.scoring.insert_job
        self.job_for_request = self.scoring.job_for_request
        self.finish_job = self.scoring.finish_job
        self.insert_score = self.scoring.insert_score
        self.unfinished_jobs = self.scoring.unfinished_jobs
        self.jobs_of = self.scoring.jobs_of
        self.jobs_for_response = self.scoring.jobs_for_response
        # reference passages
        self.replace_passages = self.reference.replace_passages
        self.retrieve_passages = self.reference.retrieve_passages
        # assessments
        self.insert_assessment = self.assessments.insert_assessment
        self.assessment_for = self.assessments.assessment_for
        self.lock_assessment = self.assessments.lock_assessment
        self.lock_idempotency_key = self.assessments.lock_idempotency_key
        self.stored_reply = self.assessments.stored_reply
        self.store_reply = self.assessments.store_reply
        self.latest_responses = self.assessments.latest_responses
        self.lock_responses = self.assessments.lock_responses
        self.insert_score_records = self.assessments.insert_score_records
        self.attach_job = self.assessments.attach_job
        self.mark_submitted = self.assessments.mark_submitted
        self.update_score_record = self.assessments.update_score_record
        self.score_records = self.assessments.score_records
        self.complete_assessment = self.assessments.complete_assessment
        # webhooks
        self.insert_webhook = self.webhooks.insert_webhook
        self.enqueue_delivery = self.webhooks.enqueue_delivery
        self.enqueue_deliveries = self.webhooks.enqueue_deliveries
        self.webhooks_of = self.webhooks.webhooks_of
        self.lease_due = self.webhooks.lease_due
        self.record_attempt = self.webhooks.record_attempt
