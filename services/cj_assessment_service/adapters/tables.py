"""SQLAlchemy Core tables of the CJ database (created by the Alembic revisions in alembic/)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

cj_batches = Table(
    "cj_batches",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("entity_ref", Text, nullable=False),
    Column("correlation_id", UUID(as_uuid=True), nullable=False),
    Column("request_event_id", UUID(as_uuid=True), nullable=False),
    Column("state", Text, nullable=False),
    Column("essay_count", Integer, nullable=False),
    Column("budget", Integer, nullable=False),
    Column("planned", Integer, nullable=False, server_default=text("0")),
    Column("completed", Integer, nullable=False, server_default=text("0")),
    Column("failed", Integer, nullable=False, server_default=text("0")),
    Column("waves", Integer, nullable=False, server_default=text("0")),
    Column("partial_scoring_triggered", Boolean, nullable=False, server_default=text("false")),
    Column("threshold_reached_at", DateTime(timezone=True), nullable=True),
    Column("completion_reason", Text, nullable=True),
    Column("request_settings", JSONB, nullable=False),
    Column("previous_scores", JSONB, nullable=True),
    Column("result", JSONB, nullable=True),
    Column("error_detail", JSONB, nullable=True),
    Column("prompt_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("completion_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_activity_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("cached_prompt_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cache_write_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("estimated_cost_usd", Float, nullable=False, server_default=text("0")),
    Column("unpriced_answers", Integer, nullable=False, server_default=text("0")),
    Column("judges", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("hedged", Integer, nullable=False, server_default=text("0")),
    # When the essay texts were blanked (retention purge or erasure), and the uploaded essay
    # set the batch was read from (cj0008).
    Column("texts_purged_at", DateTime(timezone=True), nullable=True),
    Column("essay_set_id", UUID(as_uuid=True), nullable=True),
    # Human judges beside the AI (cj0009): the request's human judging, its deadline, and the
    # comparisons given to people, judged by them and released at the deadline.
    Column("human_judging", JSONB, nullable=True),
    Column("human_deadline", DateTime(timezone=True), nullable=True),
    Column("human_planned", Integer, nullable=False, server_default=text("0")),
    Column("human_answered", Integer, nullable=False, server_default=text("0")),
    Column("human_released", Integer, nullable=False, server_default=text("0")),
    Index(
        "ix_cj_batches_human_deadline",
        "human_deadline",
        postgresql_where=text("human_deadline IS NOT NULL AND finished_at IS NULL"),
    ),
    Index(
        "ix_cj_batches_texts_held",
        "finished_at",
        postgresql_where=text("texts_purged_at IS NULL AND finished_at IS NOT NULL"),
    ),
)

cj_essays = Table(
    "cj_essays",
    metadata,
    Column("batch_id", UUID(as_uuid=True), ForeignKey("cj_batches.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("essay_id", Text, nullable=False),
    Column("text_content", Text, nullable=False),
    Column("anchor_grade", Text, nullable=True),
)

cj_pairs = Table(
    "cj_pairs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("batch_id", UUID(as_uuid=True), ForeignKey("cj_batches.id"), nullable=False),
    Column("wave", Integer, nullable=False),
    Column("essay_a", Integer, nullable=False),
    Column("essay_b", Integer, nullable=False),
    Column("request_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False),
    Column("winner", Text, nullable=True),
    Column("error_code", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("1")),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("probability_a_better", Float, nullable=True),
    # Who judges or judged it (cj0009): `judge_kind` 'human' for a pair assigned to the person
    # `judge_id`; NULL for the AI's, whose `judge_id` is the answering `provider:model`. When
    # the person's verdict was staged, and when they skipped it (end of their queue).
    Column("judge_kind", Text, nullable=True),
    Column("judge_id", Text, nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=True),
    Column("skipped_at", DateTime(timezone=True), nullable=True),
    Index(
        "ix_cj_pairs_human_judge",
        "batch_id",
        "judge_id",
        postgresql_where=text("judge_kind = 'human'"),
    ),
)

# Every request id of a hedged pair: the one it was asked under when hedged and the hedge's;
# `answered_at` makes a redelivered callback of either copy a duplicate.
cj_hedge_calls = Table(
    "cj_hedge_calls",
    metadata,
    Column("request_id", UUID(as_uuid=True), primary_key=True),
    Column("pair_id", UUID(as_uuid=True), ForeignKey("cj_pairs.id"), nullable=False),
    Column("batch_id", UUID(as_uuid=True), ForeignKey("cj_batches.id"), nullable=False),
    Column("hedge", Boolean, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=True),
)

cj_scores = Table(
    "cj_scores",
    metadata,
    Column("batch_id", UUID(as_uuid=True), ForeignKey("cj_batches.id"), primary_key=True),
    Column("essay_id", Text, primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("standard_error", Float, nullable=True),
    Column("comparisons", Integer, nullable=False),
    Column("wins", Integer, nullable=False),
)

cj_essay_sets = Table(
    "cj_essay_sets",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("essay_count", Integer, nullable=False),
    Column("content_sha256", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

cj_essay_set_essays = Table(
    "cj_essay_set_essays",
    metadata,
    Column(
        "set_id",
        UUID(as_uuid=True),
        ForeignKey("cj_essay_sets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("essay_id", Text, nullable=False),
    Column("text_content", Text, nullable=False),
)

# One row per erasure request (no text): who asked, when, and what was removed.
cj_erasures = Table(
    "cj_erasures",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("batch_id", UUID(as_uuid=True), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("requested_by", Text, nullable=True),
    Column("batch_state", Text, nullable=False),
    Column("erased", JSONB, nullable=False),
    Index("ix_cj_erasures_batch", "batch_id"),
)
