"""Answer texts can be removed (retention purge, operator erasure), with an audit of erasures.

`assessment_responses` gains `text_removed_at` and `text_removed_by` (`retention` or `erasure`):
the marker of an answer whose text (and metadata) was removed while its row, scores and status
stay. `learner_erasures` records each erasure request: which kind of subject, a hash of it (never
the user id or token itself), the operator, the counts removed by kind, and when.

Indexes for the purge and the erasure: answers still holding their text by creation time (the
purge's candidates: an answer finished before the cutoff was created before it), and the jobs
and score records of an answer (looked up per candidate and per erased answer).

Revision ID: sub0004
Revises: sub0003
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision: str = "sub0004"
down_revision: str | None = "sub0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the removal marker to answers and create the erasure audit table."""
    op.add_column(
        "assessment_responses",
        sa.Column("text_removed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("assessment_responses", sa.Column("text_removed_by", sa.Text(), nullable=True))
    op.create_check_constraint(
        "ck_responses_text_removed_by",
        "assessment_responses",
        "text_removed_by IS NULL OR text_removed_by IN ('retention', 'erasure')",
    )
    op.create_table(
        "learner_erasures",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_hash", sa.Text(), nullable=False),
        sa.Column("operator_subject", sa.Text(), nullable=False),
        sa.Column("erased", JSONB(), nullable=False),
        sa.Column("already_erased", sa.Boolean(), nullable=False),
        sa.Column(
            "erased_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "subject_kind IN ('user_id', 'anonymous_token')", name="ck_erasures_subject_kind"
        ),
    )
    op.create_index("ix_learner_erasures_subject_hash", "learner_erasures", ["subject_hash"])
    op.create_index(
        "ix_responses_text_kept",
        "assessment_responses",
        ["created_at"],
        postgresql_where=sa.text("text_removed_at IS NULL"),
    )
    op.create_index("ix_jobs_response", "scoring_jobs", ["response_id"])
    op.create_index("ix_score_records_response", "assessment_score_records", ["response_id"])


def downgrade() -> None:
    """Drop the audit table, the indexes and the removal marker (removed texts stay empty)."""
    op.drop_index("ix_score_records_response", table_name="assessment_score_records")
    op.drop_index("ix_jobs_response", table_name="scoring_jobs")
    op.drop_index("ix_responses_text_kept", table_name="assessment_responses")
    op.drop_index("ix_learner_erasures_subject_hash", table_name="learner_erasures")
    op.drop_table("learner_erasures")
    op.drop_constraint("ck_responses_text_removed_by", "assessment_responses", type_="check")
    op.drop_column("assessment_responses", "text_removed_by")
    op.drop_column("assessment_responses", "text_removed_at")
