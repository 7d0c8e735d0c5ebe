"""`huleedu topics plan`: the platform's topics under a prefix with the layout the environment
sets, as aligned text or JSON; nothing is sent to a broker."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from common_core.runtime.settings import DAY_MS
from common_core.topics import Topic, platform_topics, topic_name
from huleedu_cli.app import app
from huleedu_cli.errors import InputError
from huleedu_cli.topic_commands import describe_retention, plan_lines, topic_plan

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_topic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout each test sets, not whatever the shell running the tests exports."""
    for name in list(os.environ):
        if name.upper().startswith(("TOPIC_", "KAFKA_TOPICS_")):
            monkeypatch.delenv(name)


class TestTopicPlan:
    def test_plans_every_platform_topic_under_the_prefix(self) -> None:
        specs = topic_plan("acme")

        assert [spec.name for spec in specs] == sorted(platform_topics("acme"))

    def test_takes_the_layout_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOPIC_PARTITIONS_REQUESTS", "12")
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")

        by_name = {spec.name: spec for spec in topic_plan("acme")}
        requests = by_name[topic_name(Topic.CJ_ASSESSMENT_REQUESTED, "acme")]
        completed = by_name[topic_name(Topic.CJ_ASSESSMENT_COMPLETED, "acme")]

        assert (requests.partitions, requests.replication_factor) == (12, 3)
        assert (completed.partitions, completed.replication_factor) == (3, 3)

    def test_an_invalid_setting_is_an_input_error_naming_the_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_RETENTION_MS_DEAD_LETTERS", "-5")

        with pytest.raises(InputError, match="TOPIC_RETENTION_MS_DEAD_LETTERS"):
            topic_plan("acme")

    def test_an_invalid_prefix_is_an_input_error(self) -> None:
        with pytest.raises(InputError, match="TOPIC_PREFIX"):
            topic_plan("Not A Prefix")


class TestDescribeRetention:
    @pytest.mark.parametrize(
        ("retention_ms", "text"),
        [
            (7 * DAY_MS, "7 days"),
            (DAY_MS, "1 day"),
            (3_600_000, "3600000 ms"),
            (-1, "forever"),
            (None, "broker default"),
        ],
    )
    def test_whole_days_read_as_days(self, retention_ms: int | None, text: str) -> None:
        assert describe_retention(retention_ms) == text


class TestPlanCommand:
    def test_prints_one_aligned_line_per_topic_with_its_layout(self) -> None:
        result = runner.invoke(app, ["topics", "plan", "--topic-prefix", "acme"])

        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines == plan_lines(topic_plan("acme"))
        assert lines[0].split() == ["topic", "class", "partitions", "replication", "retention"]
        assert [line.split() for line in lines if line.startswith("acme.els.")] == [
            ["acme.els.cj_assessment.requested.v1", "requests", "3", "1", "7", "days"],
            ["acme.els.cj_assessment.requested.v1.dlq", "dead_letters", "3", "1", "28", "days"],
        ]
        class_column = lines[0].index("class")
        assert {line[class_column - 2 : class_column] for line in lines} == {"  "}
        assert all(line[class_column] != " " for line in lines)

    def test_json_lists_each_topic_with_its_settings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TOPIC_PREFIX", "acme")
        monkeypatch.setenv("TOPIC_PARTITIONS_DEAD_LETTERS", "1")

        result = runner.invoke(app, ["topics", "plan", "--json"])

        assert result.exit_code == 0, result.output
        planned = {row["topic"]: row for row in json.loads(result.stdout)}
        assert planned["acme.els.cj_assessment.requested.v1.dlq"] == {
            "topic": "acme.els.cj_assessment.requested.v1.dlq",
            "class": "dead_letters",
            "partitions": 1,
            "replication_factor": 1,
            "retention_ms": 28 * DAY_MS,
        }
        assert set(planned) == set(platform_topics("acme"))

    def test_invalid_settings_end_with_one_line_and_exit_code_2(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_PARTITIONS", "0")

        result = runner.invoke(app, ["topics", "plan"])

        assert result.exit_code == 2
        assert "invalid topic settings: TOPIC_PARTITIONS" in result.output
