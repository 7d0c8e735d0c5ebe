"""What `huleedu judges invite` makes of its --judge and --deadline options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from huleedu_cli.errors import InputError
from huleedu_cli.judges_client import parse_deadline, parse_judge

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class TestJudgeOption:
    def test_id_and_display_name(self) -> None:
        assert parse_judge("t1=Ms Lind = Head") == {
            "judge_id": "t1",
            "display_name": "Ms Lind = Head",
        }

    @pytest.mark.parametrize("text", ["t1", "=Ms Lind", "t1=", " = "])
    def test_a_part_missing_is_refused(self, text: str) -> None:
        with pytest.raises(InputError, match="expected ID=Display Name"):
            parse_judge(text)


class TestDeadlineOption:
    @pytest.mark.parametrize(
        ("text", "later"),
        [("+30m", timedelta(minutes=30)), ("+2h", timedelta(hours=2)), ("+1d", timedelta(1))],
    )
    def test_relative_to_now(self, text: str, later: timedelta) -> None:
        assert parse_deadline(text, NOW) == NOW + later

    def test_an_iso_time_with_its_zone(self) -> None:
        assert parse_deadline("2026-12-08T10:00:00Z") == datetime(2026, 12, 8, 10, tzinfo=UTC)

    @pytest.mark.parametrize("text", ["2026-12-08T10:00:00", "tomorrow", "+5y"])
    def test_a_time_without_zone_or_unreadable_is_refused(self, text: str) -> None:
        with pytest.raises(InputError, match="--deadline"):
            parse_deadline(text)
