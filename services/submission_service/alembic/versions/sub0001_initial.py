"""Submission schema: responses, scores, assessments, jobs, score records, locks, webhooks, idempotency.

Revision ID: sub0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "sub0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("submission_service",)
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)
JSONB = postgresql.JSONB()
EMPTY_JSON = sa.text("'{}'::jsonb")


def _created_at() -> sa.Column:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def _fk(name: str, target: str, *, nullable: bool = False, primary_key: bool = False) -> sa.Column:
    return sa.Column(
        name,
        UUID,
        sa.ForeignKey(target, ondelete="CASCADE"),
        nullable=nullable,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "assessment_responses",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("anonymous_token", UUID, nullable=True),
        sa.Column("question_id", sa.Text(), nullable=False),
        sa.Column("module_slug", sa.Text(), nullable=False),
        sa.Column("learning_outcome_id", sa.Text(), nullable=True),
        sa.Column("content_id", sa.Text(), nullable=True),
        sa.Column("answer_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("answer_metadata", JSONB, nullable=False, server_default=EMPTY_JSON),
        _created_at(),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (anonymous_token IS NULL)", name="ck_responses_one_identity"
        ),
    )
    op.create_index(
        "ix_responses_user",
        "assessment_responses",
        ["user_id", "module_slug", "question_id", "created_at"],
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    op.create_index(
        "ix_responses_anonymous",
        "assessment_responses",
        ["anonymous_token", "module_slug", "question_id", "created_at"],
        postgresql_where=sa.text("anonymous_token IS NOT NULL"),
    )
    op.create_table(
        "assessment_scores",
        sa.Column("id", UUID, primary_key=True),
        _fk("response_id", "assessment_responses.id"),
        sa.Column("score_data", JSONB, nullable=False),
        sa.Column("model_id", sa.Text(), nullable=False),
        sa.Column("prompt_version", sa.Text(), nullable=False),
        _created_at(),
    )
    op.create_index("ix_scores_response", "assessment_scores", ["response_id"])
    op.create_table(
        "assessments",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("definition_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=True),
        sa.Column("anonymous_token", UUID, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        _created_at(),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", JSONB, nullable=True),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (anonymous_token IS NULL)", name="ck_assessments_one_identity"
        ),
    )
    op.create_table(
        "scoring_jobs",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("job_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _fk("response_id", "assessment_responses.id"),
        _fk("assessment_id", "assessments.id", nullable=True),
        sa.Column("request_id", UUID, nullable=False, unique=True),
        sa.Column("request_event_id", UUID, nullable=False),
        sa.Column("error", JSONB, nullable=True),
        _created_at(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_jobs_assessment", "scoring_jobs", ["assessment_id"])
    op.create_table(
        "assessment_score_records",
        sa.Column("id", UUID, primary_key=True),
        _fk("assessment_id", "assessments.id"),
        sa.Column("module_slug", sa.Text(), nullable=False),
        sa.Column("question_id", sa.Text(), nullable=False),
        sa.Column("score_type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("response_id", UUID, nullable=True),
        sa.Column("job_id", UUID, nullable=True),
        sa.Column("detail", JSONB, nullable=False, server_default=EMPTY_JSON),
        _created_at(),
        sa.UniqueConstraint("assessment_id", "module_slug", "question_id", name="uq_score_record"),
    )
    op.create_table(
        "response_locks",
        _fk("response_id", "assessment_responses.id", primary_key=True),
        _fk("assessment_id", "assessments.id"),
        sa.Column(
            "locked_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", UUID, primary_key=True),
        _fk("assessment_id", "assessments.id"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        _created_at(),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", UUID, primary_key=True),
        _fk("webhook_id", "webhooks.id"),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        _created_at(),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_delivery_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        _fk("delivery_id", "webhook_deliveries.id"),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "attempted_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("identity_key", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("operation", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", JSONB, nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("identity_key", "idempotency_key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "webhook_delivery_attempts",
        "webhook_deliveries",
        "webhooks",
        "response_locks",
        "assessment_score_records",
        "scoring_jobs",
        "assessments",
        "assessment_scores",
        "assessment_responses",
    ):
        op.drop_table(table)
