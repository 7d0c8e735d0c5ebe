"""Learner data lifecycle rules: what an erasure removes, and how its subject is recorded.

An erasure's audit row never holds the user id or anonymous token it was asked about, only
`subject_hash`: the SHA-256 (hex) of `huleedu-erasure-v1:<kind>:<value>`, where `kind` is
`user_id` or `anonymous_token` and `value` the user id as given or the token in its canonical
UUID form (lower case, hyphenated). Whoever knows a subject can find its erasures by computing
the same hash; the row alone names no one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from submission_service.domain.identity import Identity

SUBJECT_HASH_DOMAIN = "huleedu-erasure-v1"


class ErasedKind(StrEnum):
    """What an erasure removes (the keys of its report and the `kind` label of its metric)."""

    ANSWER_TEXTS = "answer_texts"  # answer text and metadata of a response: emptied, row kept
    SCORE_FEEDBACK = "score_feedback"  # LLM feedback on the answer in stored scores: emptied
    STAGE_FEEDBACK = "stage_feedback"  # the same feedback kept in a scoring stage's result
    OUTBOX_ROWS = "outbox_rows"  # outbox rows carrying the text (rubric requests): deleted
    OUTBOX_FEEDBACK = "outbox_feedback"  # score events in the outbox: their feedback emptied
    IDEMPOTENCY_RECORDS = "idempotency_records"  # stored replies under the learner's keys


class TextRemoval(StrEnum):
    """Why an answer's text was removed (`assessment_responses.text_removed_by`)."""

    RETENTION = "retention"
    ERASURE = "erasure"


def subject_kind(identity: Identity) -> str:
    """`user_id` or `anonymous_token`: which identifier an erasure was asked for."""
    return "user_id" if identity.user_id is not None else "anonymous_token"


def subject_hash(identity: Identity) -> str:
    """The documented hash an erasure's audit row records instead of the identifier."""
    value = identity.user_id if identity.user_id is not None else str(identity.anonymous_token)
    digest = hashlib.sha256(f"{SUBJECT_HASH_DOMAIN}:{subject_kind(identity)}:{value}".encode())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure request removed (every kind, zero included), and its audit row."""

    subject_kind: str
    erased: dict[str, int]
    already_erased: bool
    audit_id: UUID

    @property
    def removed_anything(self) -> bool:
        """True when this request removed at least one row or text."""
        return any(self.erased.values())
