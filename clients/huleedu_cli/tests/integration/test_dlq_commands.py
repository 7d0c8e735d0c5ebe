"""`huleedu dlq list / replay / topics` on the real broker, through typer's CliRunner.

Dead letters are made as the consumer runner makes them: originals are published to a topic,
read back, and turned into letters by `dead_letter_message`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.testing.kafka_reading import read_topic
from common_core.topics import dlq_topic_name
from huleedu_cli.app import app
from huleedu_cli.dead_letters import REPLAYED_FROM_HEADER, envelope_event_id
from huleedu_cli.tests.factories import MARKER_ESSAY_TEXT, dead_letter_of, essay_message

pytestmark = pytest.mark.integration

runner = CliRunner()
WIDE = {"COLUMNS": "240"}  # rich wraps tables at 80 columns when not on a terminal
PARTITIONS = 3


@dataclass(frozen=True)
class Original:
    """A message that was dead-lettered, as it was first published."""

    key: str | None
    value: bytes
    event_id: str | None
    code: str
    attempts: int | None


@dataclass(frozen=True)
class DeadLettered:
    """A topic whose three messages are in its dead-letter topic, oldest first."""

    kafka: str
    topic: str
    dlq: str
    originals: tuple[Original, ...]


async def _dead_letter_three(kafka: str, topic: str) -> tuple[Original, ...]:
    dlq = dlq_topic_name(topic)
    await ensure_topics(kafka, [topic, dlq], partitions=PARTITIONS)
    plans = [
        (essay_message(topic, "essay-1"), "payload_invalid", "text_content: too long", None),
        (essay_message(topic, "batch-7", "A second essay."), "handler_failed", "boom", 5),
        (
            OutgoingMessage(topic, MARKER_ESSAY_TEXT.encode() + b" \xff{", None),
            "envelope_invalid",
            "message is not UTF-8 JSON",
            1,
        ),
    ]
    async with KafkaEventProducer(kafka, client_id="dlq-test") as producer:
        await producer.send_many([message for message, *_ in plans])
        records = await read_topic(kafka, topic, expected=len(plans))
        by_value = {record.value: record for record in records}
        for message, code, reason, attempts in plans:
            letter = dead_letter_of(
                by_value[message.value], code=code, reason=reason, attempts=attempts
            )
            await producer.send(letter)  # one by one: the failure times are in this order
    return tuple(
        Original(message.key, message.value, envelope_event_id(message.value), code, attempts)
        for message, code, _, attempts in plans
    )


@pytest.fixture
def dead_lettered(kafka_bootstrap_servers: str, make_topic_name: Callable[[], str]) -> DeadLettered:
    topic = make_topic_name()
    originals = asyncio.run(_dead_letter_three(kafka_bootstrap_servers, topic))
    return DeadLettered(kafka_bootstrap_servers, topic, dlq_topic_name(topic), originals)


async def _read_to_end(kafka: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything in `topic` now (replays are acknowledged before the CLI returns)."""
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 60
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for tp, fetched in (await consumer.getmany(timeout_ms=200)).items():
                records.extend(record for record in fetched if record.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


def replayed(setup: DeadLettered) -> list[ConsumerRecord[bytes, bytes]]:
    """The messages in the original topic that came from a replay."""
    records = asyncio.run(_read_to_end(setup.kafka, setup.topic))
    return [r for r in records if any(n == REPLAYED_FROM_HEADER for n, _ in r.headers)]


def list_json(setup: DeadLettered, topic: str | None = None) -> list[dict[str, object]]:
    result = runner.invoke(
        app, ["dlq", "list", topic or setup.topic, "--kafka", setup.kafka, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert MARKER_ESSAY_TEXT not in result.output
    letters: list[dict[str, object]] = json.loads(result.stdout)
    return letters


class TestList:
    def test_json_lists_every_letter_with_its_metadata(self, dead_lettered: DeadLettered) -> None:
        letters = list_json(dead_lettered)

        assert [
            (x["reason"], x["attempts"], x["key"], x["event_id"], x["size_bytes"]) for x in letters
        ] == [
            (o.code, o.attempts, o.key, o.event_id, len(o.value)) for o in dead_lettered.originals
        ]
        assert letters[2]["event_id"] is None  # not JSON: no event id to read
        assert letters[0]["error_message"] == "text_content: too long"
        for letter in letters:
            assert letter["dlq_topic"] == dead_lettered.dlq
            assert letter["original_topic"] == dead_lettered.topic
            assert isinstance(letter["dlq_partition"], int)
            assert isinstance(letter["dlq_offset"], int)
            assert letter["consumer_group"] == "test-group"

    def test_table_shows_the_letters_and_never_their_contents(
        self, dead_lettered: DeadLettered
    ) -> None:
        result = runner.invoke(
            app, ["dlq", "list", dead_lettered.topic, "--kafka", dead_lettered.kafka], env=WIDE
        )

        assert result.exit_code == 0, result.output
        assert f"3 dead letters in {dead_lettered.dlq}" in result.stdout
        for original in dead_lettered.originals:
            assert original.code in result.stdout
            assert f" {len(original.value)} " in result.stdout
            if original.event_id is not None:
                assert original.event_id in result.stdout
        assert "essay-1" in result.stdout
        assert "batch-7" in result.stdout
        assert MARKER_ESSAY_TEXT not in result.output
        assert "MARKER" not in result.output

    def test_the_dlq_name_lists_the_same_letters(self, dead_lettered: DeadLettered) -> None:
        assert list_json(dead_lettered, dead_lettered.dlq) == list_json(dead_lettered)

    def test_listing_joins_no_consumer_group(self, dead_lettered: DeadLettered) -> None:
        async def groups() -> set[str]:
            admin = AIOKafkaAdminClient(bootstrap_servers=dead_lettered.kafka)
            await admin.start()
            try:
                return {group[0] for group in await admin.list_consumer_groups()}
            finally:
                await admin.close()

        before = asyncio.run(groups())
        list_json(dead_lettered)

        assert asyncio.run(groups()) - before == set()

    def test_missing_topic_is_one_clear_line(self, kafka_bootstrap_servers: str) -> None:
        name = f"test.missing{uuid.uuid4().hex}"
        result = runner.invoke(app, ["dlq", "list", name, "--kafka", kafka_bootstrap_servers])

        assert result.exit_code == 2
        assert f"error: topic {name}.dlq does not exist" in result.stderr
        assert "Traceback" not in result.output

    def test_topics_counts_the_letters(self, dead_lettered: DeadLettered) -> None:
        result = runner.invoke(app, ["dlq", "topics", "--kafka", dead_lettered.kafka, "--json"])

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)[dead_lettered.dlq] == 3


class TestReplay:
    def test_event_id_republishes_exactly_that_letter_with_its_key(
        self, dead_lettered: DeadLettered
    ) -> None:
        target = dead_lettered.originals[1]
        letter = list_json(dead_lettered)[1]

        result = runner.invoke(
            app,
            ["dlq", "replay", dead_lettered.topic, "--event-id", str(target.event_id),
             "--kafka", dead_lettered.kafka],
        )  # fmt: skip

        assert result.exit_code == 0, result.output
        assert f"replayed {target.event_id} key=batch-7" in result.stdout
        assert MARKER_ESSAY_TEXT not in result.output
        [message] = replayed(dead_lettered)
        assert message.value == target.value
        assert message.key == b"batch-7"
        headers = dict(message.headers)
        assert not [name for name in headers if name.startswith("x-dlq-")]
        assert headers["event_id"] == str(target.event_id).encode()
        assert headers[REPLAYED_FROM_HEADER] == (
            f"{dead_lettered.dlq}:{letter['dlq_partition']}:{letter['dlq_offset']}".encode()
        )

    def test_all_republishes_every_letter(self, dead_lettered: DeadLettered) -> None:
        result = runner.invoke(
            app, ["dlq", "replay", dead_lettered.dlq, "--all", "--kafka", dead_lettered.kafka]
        )

        assert result.exit_code == 0, result.output
        assert "replayed 3 dead letters" in result.stdout
        messages = replayed(dead_lettered)
        assert len(messages) == 3
        assert {(m.key, m.value) for m in messages} == {
            (o.key.encode() if o.key else None, o.value) for o in dead_lettered.originals
        }
        assert all(not n.startswith("x-dlq-") for m in messages for n, _ in m.headers)

    def test_dry_run_publishes_nothing(self, dead_lettered: DeadLettered) -> None:
        result = runner.invoke(
            app,
            ["dlq", "replay", dead_lettered.topic, "--all", "--dry-run",
             "--kafka", dead_lettered.kafka],
        )  # fmt: skip

        assert result.exit_code == 0, result.output
        assert "would replay 3 dead letters" in result.stdout
        assert replayed(dead_lettered) == []

    def test_unknown_event_id_exits_1_and_publishes_nothing(
        self, dead_lettered: DeadLettered
    ) -> None:
        missing = uuid.uuid4()
        result = runner.invoke(
            app,
            ["dlq", "replay", dead_lettered.topic, "--event-id", str(missing),
             "--kafka", dead_lettered.kafka],
        )  # fmt: skip

        assert result.exit_code == 1
        assert f"error: no dead letter with event id {missing} in {dead_lettered.dlq}" in (
            result.stderr
        )
        assert "Traceback" not in result.output
        assert replayed(dead_lettered) == []

    def test_missing_original_topic_replays_nothing(
        self, kafka_bootstrap_servers: str, make_topic_name: Callable[[], str]
    ) -> None:
        topic, gone = make_topic_name(), make_topic_name()
        letter = OutgoingMessage(
            dlq_topic_name(topic), b"{}", "k", [("x-dlq-original-topic", gone.encode())]
        )

        async def publish() -> None:
            await ensure_topics(
                kafka_bootstrap_servers, [topic, dlq_topic_name(topic)], partitions=PARTITIONS
            )
            async with KafkaEventProducer(kafka_bootstrap_servers, client_id="dlq-test") as p:
                await p.send(letter)

        asyncio.run(publish())
        result = runner.invoke(
            app, ["dlq", "replay", topic, "--all", "--kafka", kafka_bootstrap_servers]
        )

        assert result.exit_code == 2
        assert f"original topic {gone} does not exist" in result.stderr
        assert "nothing was replayed" in result.stderr


class TestReplayOptions:
    @pytest.mark.parametrize(
        "options", [[], ["--all", "--event-id", "5b0c7b0e-0c8b-4f43-9d6c-0d8d9b1a3f10"]]
    )
    def test_exactly_one_of_event_id_and_all_is_required(self, options: list[str]) -> None:
        result = runner.invoke(app, ["dlq", "replay", "test.x", *options])

        assert result.exit_code == 2
        assert "give exactly one of --event-id ID or --all" in result.stderr
