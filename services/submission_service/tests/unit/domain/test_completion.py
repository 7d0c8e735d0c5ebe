"""The completion trigger rule and `completed_at` parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from submission_service.domain.completion import completion_requested, normalise_completed_at


class TestNormaliseCompletedAt:
    @pytest.mark.parametrize("empty", [None, "", "  ", "null", "NULL", "None"])
    def test_empty_values_mean_not_completed(self, empty: str | None) -> None:
        assert normalise_completed_at(empty) is None

    def test_timestamps_are_read_as_utc(self) -> None:
        assert normalise_completed_at("2026-11-22T12:00:00+02:00") == datetime(
            2026, 11, 22, 10, 0, tzinfo=UTC
        )
        assert normalise_completed_at("2026-11-22T12:00:00Z") == datetime(
            2026, 11, 22, 12, 0, tzinfo=UTC
        )
        assert normalise_completed_at("2026-11-22T12:00:00") == datetime(
            2026, 11, 22, 12, 0, tzinfo=UTC
        )

    @pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", 5, ["2026-01-01"]])
    def test_anything_else_is_a_value_error(self, bad: object) -> None:
        with pytest.raises(ValueError, match="completed_at"):
            normalise_completed_at(bad)

    @given(st.text())
    def test_arbitrary_text_is_empty_a_timestamp_or_a_value_error(self, text: str) -> None:
        try:
            result = normalise_completed_at(text)
        except ValueError:
            return
        assert result is None or result.tzinfo is UTC


class TestCompletionRequested:
    def test_only_a_sent_timestamp_triggers(self) -> None:
        now = datetime.now(UTC)
        assert completion_requested(completed_at_sent=True, completed_at=now)
        assert not completion_requested(completed_at_sent=True, completed_at=None)
        assert not completion_requested(completed_at_sent=False, completed_at=None)
        assert not completion_requested(completed_at_sent=False, completed_at=now)
