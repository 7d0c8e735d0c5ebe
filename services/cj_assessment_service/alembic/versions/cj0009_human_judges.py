"""Human judges beside the AI (issue 25).

- `cj_batches.human_judging`: the batch's human judging (judges, share, deadline) as the JSON of
  `HumanJudgingRequest`; NULL without human judges. `human_deadline` is its deadline as a
  column, so the monitor finds due batches (and leaves batches waiting on people alone) in SQL.
- `cj_batches.human_planned` / `human_answered` / `human_released`: comparisons given to the
  judges, judged (verdicts and final errors), and released at the deadline without a verdict.
- `cj_pairs.judge_kind` (`human` for a pair assigned to a person; NULL for the AI's),
  `judge_id` (the person it is assigned to, or the `provider:model` that answered an AI pair),
  `submitted_at` (when the person's verdict was staged: a second submit changes nothing) and
  `skipped_at` (the judge skipped it: it goes to the end of their queue). A partial index
  finds a judge's pairs.

Revision ID: cj0009_human_judges
Revises: cj0008_text_retention
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "cj0009_human_judges"
down_revision: str | None = "cj0008_text_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ZERO = sa.text("0")


def upgrade() -> None:
    op.add_column("cj_batches", sa.Column("human_judging", postgresql.JSONB(), nullable=True))
    op.add_column(
        "cj_batches", sa.Column("human_deadline", sa.DateTime(timezone=True), nullable=True)
    )
    for name in ("human_planned", "human_answered", "human_released"):
        op.add_column(
            "cj_batches", sa.Column(name, sa.Integer(), nullable=False, server_default=_ZERO)
        )
    op.add_column("cj_pairs", sa.Column("judge_kind", sa.Text(), nullable=True))
    op.add_column("cj_pairs", sa.Column("judge_id", sa.Text(), nullable=True))
    op.add_column("cj_pairs", sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cj_pairs", sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_cj_pairs_human_judge",
        "cj_pairs",
        ["batch_id", "judge_id"],
        postgresql_where=sa.text("judge_kind = 'human'"),
    )
    op.create_index(
        "ix_cj_batches_human_deadline",
        "cj_batches",
        ["human_deadline"],
        postgresql_where=sa.text("human_deadline IS NOT NULL AND finished_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_cj_batches_human_deadline", table_name="cj_batches")
    op.drop_index("ix_cj_pairs_human_judge", table_name="cj_pairs")
    for name in ("skipped_at", "submitted_at", "judge_id", "judge_kind"):
        op.drop_column("cj_pairs", name)
    for name in (
        "human_released",
        "human_answered",
        "human_planned",
        "human_deadline",
        "human_judging",
    ):
        op.drop_column("cj_batches", name)
