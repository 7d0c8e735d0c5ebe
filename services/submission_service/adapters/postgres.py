"""The PostgreSQL unit of work: one transaction per request or message batch, with one store
per area (`postgres_<area>.py`) over its session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from common_core.runtime.unit_of_work import SessionUnitOfWork
from submission_service.adapters.postgres_assessments import PostgresAssessments
from submission_service.adapters.postgres_data_lifecycle import PostgresLearnerData
from submission_service.adapters.postgres_inbox import PostgresInbox
from submission_service.adapters.postgres_reference import PostgresReferencePassages
from submission_service.adapters.postgres_responses import PostgresResponses
from submission_service.adapters.postgres_scoring import PostgresScoring
from submission_service.adapters.postgres_webhooks import PostgresWebhooks
from submission_service.adapters.webhook_secrets import WebhookSecretBox


class PostgresUnitOfWork(SessionUnitOfWork):
    """The application's `UnitOfWork` (and `LifecycleUnitOfWork`): the stores of each area share
    one AsyncSession."""

    def __init__(self, session: AsyncSession, *, secret_box: WebhookSecretBox) -> None:
        super().__init__(session)
        self.inbox = PostgresInbox(session)
        self.responses = PostgresResponses(session)
        self.scoring = PostgresScoring(session)
        self.assessments = PostgresAssessments(session)
        self.webhooks = PostgresWebhooks(session, secret_box)
        self.reference = PostgresReferencePassages(session)
        self.learner_data = PostgresLearnerData(session)
