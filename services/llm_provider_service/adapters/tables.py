"""SQLAlchemy Core tables of the LLM provider database (created by the Alembic revisions)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

# One provider batch (a chunk of items submitted together). Its id is the submission key sent
# to the provider (OpenAI batch metadata), so a submission whose answer was lost is found again.
provider_batches = Table(
    "provider_batches",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    # submitting -> submitted -> ended
    Column("state", Text, nullable=False),
    Column("provider_batch_id", Text, nullable=True, unique=True),
    Column("item_count", Integer, nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("next_poll_at", DateTime(timezone=True), nullable=True),
    Column("poll_interval_seconds", Float, nullable=False),
    Column("outcome", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_provider_batches_due", "next_poll_at", postgresql_where=text("state = 'submitted'")),
    Index(
        "ix_provider_batches_submitting",
        "lease_until",
        postgresql_where=text("state = 'submitting'"),
    ),
)

# One batch-mode request, from the moment its Kafka record is handled until its callback is
# staged in the outbox. The request id is the provider's custom_id and de-duplicates redeliveries.
batch_items = Table(
    "batch_items",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("provider", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("envelope", Text, nullable=False),
    Column("message_key", Text, nullable=True),
    # pending -> queued (in a provider batch) -> done
    Column("state", Text, nullable=False),
    Column(
        "batch_id",
        UUID(as_uuid=True),
        ForeignKey("provider_batches.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index(
        "ix_batch_items_pending",
        "provider",
        "model",
        "created_at",
        postgresql_where=text("state = 'pending'"),
    ),
    Index("ix_batch_items_batch", "batch_id"),
)

# Shared rate budgets: a row per budget (provider and limit) serialises the instances; the
# grants of the last period are what the budget has spent. Granting is the server-side function
# `grant_rate_budget` (migration llm0002), one round trip per grant.
rate_budgets = Table(
    "rate_budgets",
    metadata,
    Column("name", Text, primary_key=True),
)

rate_grants = Table(
    "rate_grants",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("budget", Text, ForeignKey("rate_budgets.name", ondelete="CASCADE"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Index("ix_rate_grants_budget_time", "budget", "granted_at"),
)
