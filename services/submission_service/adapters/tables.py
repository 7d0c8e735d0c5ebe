"""SQLAlchemy Core tables of the submission database (created by the Alembic revisions)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID

metadata = MetaData()


def _now() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


assessment_responses = Table(
    "assessment_responses",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", Text, nullable=True),
    Column("anonymous_token", UUID(as_uuid=True), nullable=True),
    Column("question_id", Text, nullable=False),
    Column("module_slug", Text, nullable=False),
    Column("learning_outcome_id", Text, nullable=True),
    Column("content_id", Text, nullable=True),
    Column("answer_text", Text, nullable=False, server_default=""),
    Column("answer_metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _now(),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    # Set when the text was removed (migration sub0004): by the retention purge or an erasure.
    Column("text_removed_at", DateTime(timezone=True), nullable=True),
    Column("text_removed_by", Text, nullable=True),
    CheckConstraint(
        "(user_id IS NULL) <> (anonymous_token IS NULL)", name="ck_responses_one_identity"
    ),
    CheckConstraint(
        "text_removed_by IS NULL OR text_removed_by IN ('retention', 'erasure')",
        name="ck_responses_text_removed_by",
    ),
)

assessment_scores = Table(
    "assessment_scores",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "response_id",
        UUID(as_uuid=True),
        ForeignKey("assessment_responses.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("score_data", JSONB, nullable=False),
    Column("model_id", Text, nullable=False),
    Column("prompt_version", Text, nullable=False),
    _now(),
)

assessments = Table(
    "assessments",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("definition_id", Text, nullable=False),
    Column("user_id", Text, nullable=True),
    Column("anonymous_token", UUID(as_uuid=True), nullable=True),
    Column("status", Text, nullable=False),
    _now(),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("result", JSONB, nullable=True),
    CheckConstraint(
        "(user_id IS NULL) <> (anonymous_token IS NULL)", name="ck_assessments_one_identity"
    ),
)

scoring_jobs = Table(
    "scoring_jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("job_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column(
        "response_id",
        UUID(as_uuid=True),
        ForeignKey("assessment_responses.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "assessment_id",
        UUID(as_uuid=True),
        ForeignKey("assessments.id", ondelete="CASCADE"),
        nullable=True,
    ),
    # None for jobs that send no request (fusion; rag skipped for lack of material).
    Column("request_id", UUID(as_uuid=True), nullable=True, unique=True),
    Column("request_event_id", UUID(as_uuid=True), nullable=True),
    Column("error", JSONB, nullable=True),
    Column("result", JSONB, nullable=True),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

assessment_score_records = Table(
    "assessment_score_records",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "assessment_id",
        UUID(as_uuid=True),
        ForeignKey("assessments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("module_slug", Text, nullable=False),
    Column("question_id", Text, nullable=False),
    Column("score_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("score", Float, nullable=True),
    Column("max_score", Float, nullable=False),
    Column("response_id", UUID(as_uuid=True), nullable=True),
    Column("job_id", UUID(as_uuid=True), nullable=True),
    Column("detail", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _now(),
    UniqueConstraint("assessment_id", "module_slug", "question_id", name="uq_score_record"),
)

response_locks = Table(
    "response_locks",
    metadata,
    Column(
        "response_id",
        UUID(as_uuid=True),
        ForeignKey("assessment_responses.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "assessment_id",
        UUID(as_uuid=True),
        ForeignKey("assessments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("locked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "assessment_id",
        UUID(as_uuid=True),
        ForeignKey("assessments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("url", Text, nullable=False),
    # A Fernet token (adapters/webhook_secrets.py), never the secret itself (migration sub0002).
    Column("secret_ciphertext", Text, nullable=False),
    _now(),
    CheckConstraint(
        "left(secret_ciphertext, 2) = 'gA'", name="ck_webhooks_secret_ciphertext_is_fernet"
    ),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "webhook_id",
        UUID(as_uuid=True),
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    _now(),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
)

webhook_delivery_attempts = Table(
    "webhook_delivery_attempts",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column(
        "delivery_id",
        UUID(as_uuid=True),
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("attempt", Integer, nullable=False),
    Column("attempted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("succeeded", Boolean, nullable=False),
    Column("http_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("identity_key", Text, nullable=False),
    Column("idempotency_key", Text, nullable=False),
    Column("operation", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", JSONB, nullable=False),
    _now(),
    PrimaryKeyConstraint("identity_key", "idempotency_key", name="pk_idempotency_keys"),
)

# Course reference material of the definitions (migration sub0003), searched with full-text search.
reference_passages = Table(
    "reference_passages",
    metadata,
    Column("definition_id", Text, nullable=False),
    Column("passage_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("question_ids", ARRAY(Text), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column(
        "search",
        TSVECTOR,
        Computed("to_tsvector('english'::regconfig, text)", persisted=True),
        nullable=False,
    ),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("definition_id", "passage_id", name="pk_reference_passages"),
)

# One row per erasure request (migration sub0004): counts and a hash of the subject, no text.
learner_erasures = Table(
    "learner_erasures",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("subject_kind", Text, nullable=False),
    Column("subject_hash", Text, nullable=False),
    Column("operator_subject", Text, nullable=False),
    Column("erased", JSONB, nullable=False),
    Column("already_erased", Boolean, nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "subject_kind IN ('user_id', 'anonymous_token')", name="ck_erasures_subject_kind"
    ),
)
