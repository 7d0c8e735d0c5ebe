"""`huleedu topics apply` on the real broker, through typer's CliRunner: it creates the planned
topics with their partitions, replication factor and retention, changes nothing when run again,
reports existing topics that differ, and reports a broker's refusal in one line."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from common_core.runtime.kafka_admin import (
    TopicState,
    admin_client,
    describe_topics,
    ensure_topics,
)
from common_core.runtime.settings import DAY_MS
from common_core.topics import Topic, dlq_topic_name, platform_topics, topic_name
from huleedu_cli.app import app

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_topic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout each test sets, not whatever the shell running the tests exports."""
    for name in list(os.environ):
        if name.upper().startswith(("TOPIC_", "KAFKA_TOPICS_")):
            monkeypatch.delenv(name)


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses, so the whole plan starts missing."""
    return f"tp{uuid.uuid4().hex[:12]}"


def apply(kafka: str, prefix: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(
        app, ["topics", "apply", "--kafka", kafka, "--topic-prefix", prefix, "--json"]
    )
    assert result.exit_code in (0, 1), result.output
    outcome: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, outcome


def topics_under(kafka: str, prefix: str) -> dict[str, TopicState]:
    return {
        name: state
        for name, state in asyncio.run(describe_topics(kafka)).items()
        if name.startswith(f"{prefix}.")
    }


async def _retention_ms(kafka: str, names: list[str]) -> dict[str, int]:
    admin = admin_client(kafka)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        await admin.close()
    found: dict[str, int] = {}
    for response in responses:
        for _code, _message, _type, name, entries in response.resources:
            for entry in entries:
                if entry[0] == "retention.ms":
                    found[name] = int(entry[1])
    return found


class TestApply:
    def test_creates_every_planned_topic_with_its_layout(
        self, kafka_bootstrap_servers: str, prefix: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_PARTITIONS_REQUESTS", "4")
        monkeypatch.setenv("TOPIC_PARTITIONS_DEAD_LETTERS", "1")
        monkeypatch.setenv("TOPIC_RETENTION_MS_CALLBACKS", str(2 * DAY_MS))

        exit_code, outcome = apply(kafka_bootstrap_servers, prefix)

        assert exit_code == 0
        assert sorted(row["topic"] for row in outcome["created"]) == sorted(platform_topics(prefix))
        assert outcome["existing"] == []
        created = topics_under(kafka_bootstrap_servers, prefix)
        requests = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
        callbacks = topic_name(Topic.LLM_COMPARISON_RESULT, prefix)
        completions = topic_name(Topic.CJ_ASSESSMENT_COMPLETED, prefix)
        letters = dlq_topic_name(requests)
        assert set(created) == set(platform_topics(prefix))
        assert created[requests] == TopicState(requests, 4, 1)
        assert created[callbacks] == TopicState(callbacks, 3, 1)
        assert created[letters] == TopicState(letters, 1, 1)
        retention = asyncio.run(
            _retention_ms(kafka_bootstrap_servers, [requests, callbacks, completions, letters])
        )
        assert retention == {
            requests: 7 * DAY_MS,
            callbacks: 2 * DAY_MS,
            completions: 7 * DAY_MS,
            letters: 28 * DAY_MS,
        }

    def test_a_second_apply_changes_nothing(
        self, kafka_bootstrap_servers: str, prefix: str
    ) -> None:
        apply(kafka_bootstrap_servers, prefix)
        before = topics_under(kafka_bootstrap_servers, prefix)

        exit_code, outcome = apply(kafka_bootstrap_servers, prefix)

        assert exit_code == 0
        assert outcome["created"] == []
        assert sorted(outcome["existing"]) == sorted(platform_topics(prefix))
        assert outcome["differences"] == outcome["problems"] == []
        assert topics_under(kafka_bootstrap_servers, prefix) == before

    def test_an_existing_topic_with_fewer_partitions_is_reported_and_left_alone(
        self, kafka_bootstrap_servers: str, prefix: str
    ) -> None:
        small = topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix)
        asyncio.run(ensure_topics(kafka_bootstrap_servers, [small], partitions=1))

        exit_code, outcome = apply(kafka_bootstrap_servers, prefix)

        assert exit_code == 1
        assert outcome["differences"] == [f"{small} has 1 partitions, planned 3"]
        assert outcome["problems"] == [f"{small} has 1 partitions, expected 3"]
        assert len(outcome["created"]) == len(platform_topics(prefix)) - 1
        assert topics_under(kafka_bootstrap_servers, prefix)[small].partitions == 1

    def test_the_text_report_names_what_it_created_and_what_was_there(
        self, kafka_bootstrap_servers: str, prefix: str
    ) -> None:
        existing = topic_name(Topic.ASSESSMENT_SCORED, prefix)
        asyncio.run(ensure_topics(kafka_bootstrap_servers, [existing], partitions=5))
        planned = len(platform_topics(prefix))

        result = runner.invoke(
            app, ["topics", "apply", "--kafka", kafka_bootstrap_servers, "--topic-prefix", prefix]
        )

        assert result.exit_code == 0, result.output
        requests = topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix)
        assert (
            f"created {requests} (3 partitions, replication factor 1, retention 7 days)"
            in result.stdout
        )
        assert f"differs: {existing} has 5 partitions, planned 3" in result.stdout
        assert (
            f"{planned - 1} topics created, 1 already there, 1 differ from the plan"
            in result.stdout
        )

    def test_a_refusal_by_the_broker_is_one_line_naming_the_topics_and_the_cause(
        self, kafka_bootstrap_servers: str, prefix: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR_COMPLETIONS", "3")  # one broker here

        result = runner.invoke(
            app, ["topics", "apply", "--kafka", kafka_bootstrap_servers, "--topic-prefix", prefix]
        )

        assert result.exit_code == 2
        assert result.output.startswith("error: the broker refused to create ")
        assert len(result.output.strip().splitlines()) == 1
        assert f"{topic_name(Topic.CJ_ASSESSMENT_COMPLETED, prefix)} (" in result.output
        assert "InvalidReplicationFactorError" in result.output
        assert topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix) in topics_under(
            kafka_bootstrap_servers, prefix
        )

    def test_an_unreachable_broker_is_one_line(self, prefix: str) -> None:
        result = runner.invoke(
            app,
            [
                "topics",
                "apply",
                "--kafka",
                "127.0.0.1:1",
                "--topic-prefix",
                prefix,
                "--connect-timeout",
                "2",
            ],
        )

        assert result.exit_code == 2
        assert result.output.startswith("error: cannot reach the Kafka broker at 127.0.0.1:1")
