"""Completion trigger (docs/contracts.md): only a PATCH setting `completed_at` to a timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

_EMPTY_MARKERS = frozenset({"", "null", "none"})


def normalise_completed_at(value: object) -> datetime | None:
    """Read a client's `completed_at`: empty, `null` and the string "null" mean not completed.

    Raises ValueError for anything that is neither empty nor a timestamp.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _EMPTY_MARKERS:
            return None
        try:
            return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except (ValueError, OverflowError) as exc:
            raise ValueError("completed_at must be an ISO 8601 timestamp or empty") from exc
    if isinstance(value, datetime):
        try:
            return as_utc(value)
        except OverflowError as exc:
            raise ValueError("completed_at is out of range") from exc
    raise ValueError("completed_at must be an ISO 8601 timestamp or empty")


def as_utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def completion_requested(*, completed_at_sent: bool, completed_at: datetime | None) -> bool:
    """True only when the request itself sets `completed_at` to a timestamp (not the stored row)."""
    return completed_at_sent and completed_at is not None
