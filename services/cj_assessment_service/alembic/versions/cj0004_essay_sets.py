"""Essay sets: essays uploaded over HTTP that a CJ request names instead of inlining them.

A request of thousands of full-length essays does not fit in one Kafka message (1 MB by
default), so the upstream uploads them first (`POST /api/v1/essay-sets`) and the request event
carries the set's id (claim check). Intake copies a set's essays into `cj_essays`, so deleting a
set never touches a batch; sets are deleted once `expires_at` has passed (the retention).

Revision ID: cj0004_essay_sets
Revises: cj0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "cj0004_essay_sets"
down_revision: str | None = "cj0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cj_essay_sets",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("essay_count", sa.Integer, nullable=False),
        sa.Column("content_sha256", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cj_essay_sets_expires_at", "cj_essay_sets", ["expires_at"])
    op.create_table(
        "cj_essay_set_essays",
        sa.Column(
            "set_id",
            UUID(as_uuid=True),
            sa.ForeignKey("cj_essay_sets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("essay_id", sa.Text, nullable=False),
        sa.Column("text_content", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cj_essay_set_essays")
    op.drop_index("ix_cj_essay_sets_expires_at", table_name="cj_essay_sets")
    op.drop_table("cj_essay_sets")
