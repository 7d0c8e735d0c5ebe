"""Answer texts can be removed (retention purge, operator erasure), with an audit of erasures.

`assessment_responses` gains `text_removed_at` and `text_removed_by` (`retention` or `erasure`):
the marker of an answer whose text (and metadata) was removed while its row, scores and status
stay. `learner_erasures` records each erasure request: which kind of subject, a hash of it (never
the user id or token itself), the operator, the counts removed by kind, and when.

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


def downgrade() -> None:
    """Drop the audit table and the removal marker (removed texts stay empty)."""
    op.drop_index("ix_learner_erasures_subject_hash", table_name="learner_erasures")
    op.drop_table("learner_erasures")
    op.drop_constraint("ck_responses_text_removed_by", "assessment_responses", type_="check")
    op.drop_column("assessment_responses", "text_removed_by")
    op.drop_column("assessment_responses", "text_removed_at")
