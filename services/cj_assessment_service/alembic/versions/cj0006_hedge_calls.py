"""Hedged requests: the request ids of hedged pairs, and each batch's count of hedges.

A pair keeps one request id in `cj_pairs.request_id` (replaced when a retryable error asks it
again). A hedged pair has a second request outstanding at once, so both of its request ids go to
`cj_hedge_calls` (the hot `cj_pairs` rows keep their HOT updates: no new indexed column there);
`answered_at` per request id keeps redelivered callbacks of either copy idempotent, and
`cj_batches.hedged` bounds a batch's extra calls.

Revision ID: cj0006_hedge_calls
Revises: cj0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision: str = "cj0006_hedge_calls"
down_revision: str | None = "cj0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "cj_batches",
        sa.Column("hedged", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "cj_hedge_calls",
        sa.Column("request_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("pair_id", UUID(as_uuid=True), sa.ForeignKey("cj_pairs.id"), nullable=False),
        sa.Column("batch_id", UUID(as_uuid=True), sa.ForeignKey("cj_batches.id"), nullable=False),
        sa.Column("hedge", sa.Boolean(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_cj_hedge_calls_pair", "cj_hedge_calls", ["pair_id"])
    op.create_index("ix_cj_hedge_calls_batch", "cj_hedge_calls", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_cj_hedge_calls_batch", table_name="cj_hedge_calls")
    op.drop_index("ix_cj_hedge_calls_pair", table_name="cj_hedge_calls")
    op.drop_table("cj_hedge_calls")
    op.drop_column("cj_batches", "hedged")
