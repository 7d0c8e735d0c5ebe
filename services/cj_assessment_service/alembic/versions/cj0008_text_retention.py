"""Retention and erasure of essay texts (issue 23).

- `cj_batches.texts_purged_at`: when the batch's essay texts were blanked, by the retention purge
  (ESSAY_TEXT_RETENTION_SECONDS after the batch finished) or by an erasure; scores, pairs,
  statistics and the batch row stay. A partial index finds the finished batches whose texts
  are still held.
- `cj_batches.essay_set_id`: the uploaded essay set a batch was read from, so erasing the batch
  also deletes the set (NULL for inline essays and batches from before this revision).
- `cj_erasures`: one audit row per erasure request: the batch, when, who (the token subject)
  and what was removed (counts). No text. No foreign key: the record outlives anything it
  names.

Revision ID: cj0008_text_retention
Revises: cj0007_pair_probability
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cj0008_text_retention"
down_revision: str | None = "cj0007_pair_probability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cj_batches", sa.Column("texts_purged_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "cj_batches", sa.Column("essay_set_id", postgresql.UUID(as_uuid=True), nullable=True)
    )
    op.create_index(
        "ix_cj_batches_texts_held",
        "cj_batches",
        ["finished_at"],
        postgresql_where=sa.text("texts_purged_at IS NULL AND finished_at IS NOT NULL"),
    )
    op.create_table(
        "cj_erasures",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("batch_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("batch_state", sa.Text(), nullable=False),
        sa.Column("erased", postgresql.JSONB(), nullable=False),
    )
    op.create_index("ix_cj_erasures_batch", "cj_erasures", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_cj_erasures_batch", table_name="cj_erasures")
    op.drop_table("cj_erasures")
    op.drop_index("ix_cj_batches_texts_held", table_name="cj_batches")
    op.drop_column("cj_batches", "essay_set_id")
    op.drop_column("cj_batches", "texts_purged_at")
