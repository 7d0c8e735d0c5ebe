"""A batch's cached tokens, estimated cost and judges (docs/contracts.md `resource_usage`, `judges`).

Summed as answers are recorded, like prompt_tokens and completion_tokens: cached and cache-write
prompt tokens, the estimated cost in US dollars, how many answers used tokens without a price
(their batch's cost is then unknown, reported as null), and the provider/model/prompt version
behind the verdicts with their counts. Batches that already have answers predate per-answer
costs, so those answers count as unpriced: their cost is unknown, not 0.

Revision ID: cj0005
Revises: cj0004_essay_sets
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "cj0005"
down_revision: str | None = "cj0004_essay_sets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    zero = sa.text("0")
    op.add_column(
        "cj_batches",
        sa.Column("cached_prompt_tokens", sa.BigInteger(), nullable=False, server_default=zero),
    )
    op.add_column(
        "cj_batches",
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False, server_default=zero),
    )
    op.add_column(
        "cj_batches",
        sa.Column("estimated_cost_usd", sa.Float(), nullable=False, server_default=zero),
    )
    op.add_column(
        "cj_batches",
        sa.Column("unpriced_answers", sa.Integer(), nullable=False, server_default=zero),
    )
    op.add_column(
        "cj_batches",
        sa.Column("judges", JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")),
    )
    op.execute("UPDATE cj_batches SET unpriced_answers = completed + failed")


def downgrade() -> None:
    for column in (
        "judges",
        "unpriced_answers",
        "estimated_cost_usd",
        "cache_write_tokens",
        "cached_prompt_tokens",
    ):
        op.drop_column("cj_batches", column)
