"""The judge's probability that essay A is better, per answered pair (issue 24).

`LLMComparisonResultV1.probability_essay_a_better` is stored where a verdict carries one, and the
Bradley-Terry fit counts it as a soft verdict (p for A, 1 - p for B). Nullable: hard verdicts and
every pair answered before this revision have none. Not indexed, so updates of the hot `cj_pairs`
rows stay HOT.

Revision ID: cj0007_pair_probability
Revises: cj0006_hedge_calls
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cj0007_pair_probability"
down_revision: str | None = "cj0006_hedge_calls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cj_pairs", sa.Column("probability_a_better", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("cj_pairs", "probability_a_better")
