"""Reference passages for retrieval (PostgreSQL full-text search) and the four essay stages.

`reference_passages` holds the course material named by the assessment definitions, loaded at
start-up, with a generated `tsvector` column (English configuration) and a GIN index on it, so
the rag stage retrieves passages with `@@` and ranks them with `ts_rank_cd`.

`scoring_jobs` rows that send no request (a `fusion` job, a `rag` job skipped for lack of
material) have no request id: `request_id` and `request_event_id` become nullable. Essay jobs of
the previous single-stage design (`assessment_essay_rubric`) are `gpt` jobs. A finished stage keeps
what it produced (overall score, citations, the fused parts) in `scoring_jobs.result`.

Revision ID: sub0003
Revises: sub0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

revision: str = "sub0003"
down_revision: str | None = "sub0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the passages table and its GIN index; let request-less jobs exist."""
    op.create_table(
        "reference_passages",
        sa.Column("definition_id", sa.Text(), nullable=False),
        sa.Column("passage_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("question_ids", ARRAY(sa.Text()), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "search",
            TSVECTOR(),
            sa.Computed("to_tsvector('english'::regconfig, text)", persisted=True),
            nullable=False,
        ),
        sa.Column(
            "loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("definition_id", "passage_id", name="pk_reference_passages"),
    )
    op.create_index(
        "ix_reference_passages_search", "reference_passages", ["search"], postgresql_using="gin"
    )
    op.create_index(
        "ix_reference_passages_questions",
        "reference_passages",
        ["question_ids"],
        postgresql_using="gin",
    )
    op.alter_column("scoring_jobs", "request_id", nullable=True)
    op.alter_column("scoring_jobs", "request_event_id", nullable=True)
    op.add_column("scoring_jobs", sa.Column("result", JSONB(), nullable=True))
    op.execute(
        "UPDATE scoring_jobs SET job_type = 'gpt' WHERE job_type = 'assessment_essay_rubric'"
    )


def downgrade() -> None:
    """Drop the passages; request-less jobs cannot exist in the old schema and are removed."""
    op.execute("DELETE FROM scoring_jobs WHERE request_id IS NULL OR request_event_id IS NULL")
    op.execute("DELETE FROM scoring_jobs WHERE job_type = 'rag'")
    op.execute(
        "UPDATE scoring_jobs SET job_type = 'assessment_essay_rubric' WHERE job_type = 'gpt'"
    )
    op.drop_column("scoring_jobs", "result")
    op.alter_column("scoring_jobs", "request_event_id", nullable=False)
    op.alter_column("scoring_jobs", "request_id", nullable=False)
    op.drop_index("ix_reference_passages_questions", table_name="reference_passages")
    op.drop_index("ix_reference_passages_search", table_name="reference_passages")
    op.drop_table("reference_passages")
