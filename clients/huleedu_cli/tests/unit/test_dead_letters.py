from __future__ import annotations

import io
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from rich.console import Console

from common_core.runtime.kafka_producer import OutgoingMessage
from huleedu_cli.dead_letters import (
    REPLAYED_FROM_HEADER,
    DeadLetter,
    dead_letter_from_record,
    envelope_event_id,
    plan_replay,
    resolve_topic,
)
from huleedu_cli.dlq_commands import render_dead_letters
from huleedu_cli.errors import InputError
from huleedu_cli.tests.factories import (
    MARKER_ESSAY_TEXT,
    dead_letter_of,
    essay_message,
    record_of,
)

TOPIC = "huleedu.llm_provider.comparison_requested.v1"


def letter(
    *,
    key: str | None = "essay-1",
    value: bytes | None = None,
    code: str = "handler_failed",
    reason: str = "database unavailable",
    attempts: int | None = 3,
    offset: int = 0,
) -> DeadLetter:
    """A dead letter as the consumer runner writes it, read back from the DLQ at `offset`."""
    message = essay_message(TOPIC, key)
    if value is not None:
        message = OutgoingMessage(message.topic, value, message.key, message.headers)
    original = record_of(message, partition=2, offset=40 + offset)
    dead = dead_letter_of(original, code=code, reason=reason, attempts=attempts)
    return dead_letter_from_record(record_of(dead, partition=1, offset=offset))


class TestResolveTopic:
    def test_original_name_gives_its_dead_letter_topic(self) -> None:
        assert resolve_topic("test.abc") == ("test.abc", "test.abc.dlq")

    def test_dead_letter_name_is_accepted(self) -> None:
        assert resolve_topic("test.abc.dlq") == ("test.abc", "test.abc.dlq")

    def test_registered_topic_without_prefix_gets_the_prefix(self) -> None:
        assert resolve_topic("cj_assessment.completed.v1", "staging") == (
            "staging.cj_assessment.completed.v1",
            "staging.cj_assessment.completed.v1.dlq",
        )

    def test_bad_prefix_or_empty_name_is_an_input_error(self) -> None:
        with pytest.raises(InputError):
            resolve_topic("cj_assessment.completed.v1", "Not A Prefix")
        with pytest.raises(InputError):
            resolve_topic(".dlq")


class TestReadingALetter:
    def test_headers_key_event_id_and_size_are_read(self) -> None:
        message = essay_message(TOPIC, "essay-1")
        original = record_of(message, partition=2, offset=41)
        dead = dead_letter_of(original, code="payload_invalid", reason="bad data", attempts=4)

        read = dead_letter_from_record(record_of(dead, partition=1, offset=7))

        assert read.reason == "payload_invalid"
        assert read.error_message == "bad data"
        assert read.attempts == 4
        assert read.key == "essay-1"
        assert read.event_id == envelope_event_id(message.value)
        assert read.event_id is not None
        assert read.size == len(message.value)
        assert (read.dlq_topic, read.partition, read.offset) == (f"{TOPIC}.dlq", 1, 7)
        assert (read.original_topic, read.original_partition, read.original_offset) == (
            TOPIC,
            2,
            41,
        )
        assert read.consumer_group == "test-group"
        assert read.failed_at.tzinfo is not None
        assert read.replayed_from is None

    def test_letter_without_attempts_header_has_none(self) -> None:
        assert letter(attempts=None).attempts is None

    def test_value_that_is_not_json_has_no_event_id(self) -> None:
        assert letter(value=b"\xff\xfe not json").event_id is None

    @pytest.mark.parametrize(
        "value",
        [b"[1, 2]", b'{"event_id": 5}', b'{"event_id": "not-a-uuid"}', b"{}", b'"text"'],
    )
    def test_json_without_a_uuid_event_id_has_none(self, value: bytes) -> None:
        assert envelope_event_id(value) is None

    def test_original_topic_falls_back_to_the_name_without_dlq(self) -> None:
        dead = OutgoingMessage(f"{TOPIC}.dlq", b"{}", "k", [("x-dlq-error-code", b"rejected")])

        read = dead_letter_from_record(record_of(dead))

        assert read.original_topic == TOPIC
        assert read.attempts is None
        assert read.original_offset is None

    def test_failed_at_header_is_the_time(self) -> None:
        dead = OutgoingMessage(
            f"{TOPIC}.dlq", b"{}", None, [("x-dlq-failed-at", b"2024-05-01T10:20:30+00:00")]
        )
        assert dead_letter_from_record(record_of(dead)).failed_at == datetime(
            2024, 5, 1, 10, 20, 30, tzinfo=UTC
        )

    def test_contents_are_neither_in_the_repr_nor_in_the_summary(self) -> None:
        read = letter()

        assert MARKER_ESSAY_TEXT not in repr(read)
        assert MARKER_ESSAY_TEXT not in str(read.summary())


class TestReplayMessage:
    def test_original_bytes_and_key_go_to_the_original_topic_without_dlq_headers(self) -> None:
        read = letter(key="batch-7", offset=3)

        message = read.replay_message()

        assert message.topic == TOPIC
        assert message.key == "batch-7"
        assert message.value == read.value
        names = [name for name, _ in message.headers]
        assert not [name for name in names if name.startswith("x-dlq-")]
        assert ("event_id", (read.event_id or "").encode()) in message.headers
        assert (REPLAYED_FROM_HEADER, f"{TOPIC}.dlq:1:3".encode()) in message.headers

    def test_an_earlier_replayed_from_header_is_replaced(self) -> None:
        message = essay_message(TOPIC, "k")
        replayed = OutgoingMessage(
            message.topic, message.value, "k", [*message.headers, (REPLAYED_FROM_HEADER, b"old")]
        )
        dead = dead_letter_of(record_of(replayed), code="handler_failed", reason="again")

        read = dead_letter_from_record(record_of(dead, offset=9))
        again = read.replay_message()

        assert read.replayed_from == "old"
        assert [v for n, v in again.headers if n == REPLAYED_FROM_HEADER] == [
            f"{TOPIC}.dlq:0:9".encode()
        ]


class TestPlanReplay:
    def test_event_id_selects_only_that_event(self) -> None:
        letters = [letter(offset=0), letter(offset=1), letter(offset=2)]
        wanted = letters[1].event_id

        plan = plan_replay(letters, UUID(wanted or ""))

        assert plan.letters == [letters[1]]
        assert plan.superseded == 0

    def test_unknown_event_id_selects_nothing(self) -> None:
        assert plan_replay([letter()], uuid4()).letters == []

    def test_all_keeps_letters_without_event_id_and_the_latest_letter_of_each_event(self) -> None:
        first = letter(offset=0)
        unreadable = letter(value=b"not json", offset=1)
        again = dead_letter_from_record(
            record_of(
                OutgoingMessage(first.dlq_topic, first.value, first.key, list(first.headers)),
                partition=first.partition,
                offset=5,
            )
        )
        other = letter(offset=6)

        plan = plan_replay([first, unreadable, again, other])

        assert plan.letters == [unreadable, again, other]
        assert plan.superseded == 1


class TestRenderDeadLetters:
    def render(self, letters: list[DeadLetter]) -> str:
        buffer = io.StringIO()
        render_dead_letters(Console(file=buffer, width=240), f"{TOPIC}.dlq", letters)
        return buffer.getvalue()

    def test_table_shows_metadata_and_never_the_contents(self) -> None:
        letters = [
            letter(code="payload_invalid", attempts=None, key="essay-1"),
            letter(value=MARKER_ESSAY_TEXT.encode(), code="envelope_invalid", offset=1),
        ]

        output = self.render(letters)

        assert "2 dead letters" in output
        assert "payload_invalid" in output
        assert "envelope_invalid" in output
        assert str(letters[0].event_id) in output
        assert f" {letters[0].size} " in output
        assert "1:1" in output
        assert MARKER_ESSAY_TEXT not in output
        assert "MARKER" not in output

    def test_long_error_messages_are_shortened_to_one_line(self) -> None:
        output = self.render([letter(reason="first line\nsecond line " + "x" * 300)])

        assert "first line second line" in output
        assert "x" * 300 not in output
        assert "…" in output

    def test_rich_markup_in_keys_is_printed_as_is(self) -> None:
        assert "[bold]k[/bold]" in self.render([letter(key="[bold]k[/bold]")])

    def test_empty_topic_says_so(self) -> None:
        assert "no dead letters in" in self.render([])
