"""LLM provider schema: provider batches and their items, shared rate budgets.

Revision ID: llm0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "llm0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("llm_provider_service",)
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _at(name: str, *, nullable: bool = True) -> sa.Column:
    default = None if nullable else sa.func.now()
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=default)


def upgrade() -> None:
    op.create_table(
        "provider_batches",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("provider_batch_id", sa.Text(), nullable=True, unique=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        _at("lease_until"),
        _at("next_poll_at"),
        sa.Column("poll_interval_seconds", sa.Float(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        _at("created_at", nullable=False),
        _at("submitted_at"),
        _at("ended_at"),
        sa.CheckConstraint(
            "state IN ('submitting', 'submitted', 'ended')", name="ck_provider_batches_state"
        ),
    )
    op.create_index(
        "ix_provider_batches_due",
        "provider_batches",
        ["next_poll_at"],
        postgresql_where=sa.text("state = 'submitted'"),
    )
    op.create_index(
        "ix_provider_batches_submitting",
        "provider_batches",
        ["lease_until"],
        postgresql_where=sa.text("state = 'submitting'"),
    )
    op.create_table(
        "batch_items",
        sa.Column("request_id", UUID, primary_key=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column(
            "batch_id",
            UUID,
            sa.ForeignKey("provider_batches.id", ondelete="SET NULL"),
            nullable=True,
        ),
        _at("created_at", nullable=False),
        _at("finished_at"),
        sa.CheckConstraint("state IN ('pending', 'queued', 'done')", name="ck_batch_items_state"),
        sa.CheckConstraint("kind IN ('comparison', 'rubric')", name="ck_batch_items_kind"),
    )
    op.create_index(
        "ix_batch_items_pending",
        "batch_items",
        ["provider", "model", "created_at"],
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_index("ix_batch_items_batch", "batch_items", ["batch_id"])
    op.create_table("rate_budgets", sa.Column("name", sa.Text(), primary_key=True))
    op.create_table(
        "rate_grants",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column(
            "budget",
            sa.Text(),
            sa.ForeignKey("rate_budgets.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_grants_budget_time", "rate_grants", ["budget", "granted_at"])


def downgrade() -> None:
    op.drop_table("rate_grants")
    op.drop_table("rate_budgets")
    op.drop_table("batch_items")
    op.drop_table("provider_batches")
