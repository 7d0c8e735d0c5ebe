"""CJ assessment schema: batches, essays, comparison pairs, scores.

Revision ID: cj0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cj0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("cj_assessment_service",)
depends_on: str | Sequence[str] | None = None

_LIVE = "state NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')"


def upgrade() -> None:
    now = sa.func.now()
    op.create_table(
        "cj_batches",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("entity_ref", sa.Text(), nullable=False),
        sa.Column("correlation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("request_event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("essay_count", sa.Integer(), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("completed", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("failed", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("waves", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "partial_scoring_triggered",
            sa.Boolean(),
            nullable=False,
            server_default=sa.text("false"),
        ),
        sa.Column("threshold_reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completion_reason", sa.Text(), nullable=True),
        sa.Column("request_settings", postgresql.JSONB(), nullable=False),
        sa.Column("previous_scores", postgresql.JSONB(), nullable=True),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.Column("error_detail", postgresql.JSONB(), nullable=True),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column(
            "completion_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column(
            "last_activity_at", sa.DateTime(timezone=True), nullable=False, server_default=now
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    # At most one live batch per upstream ref: the natural-key de-duplication of requests.
    op.create_index(
        "uq_cj_batches_live_entity_ref",
        "cj_batches",
        ["entity_ref"],
        unique=True,
        postgresql_where=sa.text(_LIVE),
    )
    op.create_index("ix_cj_batches_entity_ref_created", "cj_batches", ["entity_ref", "created_at"])
    # The monitor scans live batches by last activity.
    op.create_index(
        "ix_cj_batches_live_activity",
        "cj_batches",
        ["last_activity_at"],
        postgresql_where=sa.text(_LIVE),
    )
    op.create_table(
        "cj_essays",
        sa.Column(
            "batch_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("cj_batches.id"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("essay_id", sa.Text(), nullable=False),
        sa.Column("text_content", sa.Text(), nullable=False),
        sa.Column("anchor_grade", sa.Text(), nullable=True),
        sa.UniqueConstraint("batch_id", "essay_id", name="uq_cj_essays_batch_essay"),
    )
    op.create_table(
        "cj_pairs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "batch_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("cj_batches.id"),
            nullable=False,
        ),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("essay_a", sa.Integer(), nullable=False),
        sa.Column("essay_b", sa.Integer(), nullable=False),
        sa.Column("request_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("winner", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1")),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False, server_default=now),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        # A pair is never asked twice in the same orientation.
        sa.UniqueConstraint("batch_id", "essay_a", "essay_b", name="uq_cj_pairs_orientation"),
    )
    # Callbacks find their pair by request id.
    op.create_index("uq_cj_pairs_request_id", "cj_pairs", ["request_id"], unique=True)
    op.create_index("ix_cj_pairs_batch_status", "cj_pairs", ["batch_id", "status"])
    op.create_table(
        "cj_scores",
        sa.Column(
            "batch_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("cj_batches.id"),
            primary_key=True,
        ),
        sa.Column("essay_id", sa.Text(), primary_key=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("standard_error", sa.Float(), nullable=True),
        sa.Column("comparisons", sa.Integer(), nullable=False),
        sa.Column("wins", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cj_scores")
    op.drop_index("ix_cj_pairs_batch_status", table_name="cj_pairs")
    op.drop_index("uq_cj_pairs_request_id", table_name="cj_pairs")
    op.drop_table("cj_pairs")
    op.drop_table("cj_essays")
    op.drop_index("ix_cj_batches_live_activity", table_name="cj_batches")
    op.drop_index("ix_cj_batches_entity_ref_created", table_name="cj_batches")
    op.drop_index("uq_cj_batches_live_entity_ref", table_name="cj_batches")
    op.drop_table("cj_batches")
