"""The topics' layout: which class a topic is in, the platform's topic list, each topic's
partitions, replication factor and retention from the settings, and what verify mode checks."""

from __future__ import annotations

import os

import pytest

from common_core.runtime.kafka_admin import TopicSpec, TopicState, topic_problems
from common_core.runtime.settings import DAY_MS, ServiceSettings, TopicSettings, TopicsMode
from common_core.topics import (
    DEAD_LETTERED,
    Topic,
    TopicClass,
    dlq_topic_name,
    platform_topics,
    topic_class,
    topic_name,
)


@pytest.fixture(autouse=True)
def _no_topic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout each test sets, not whatever the shell running the tests exports."""
    for name in list(os.environ):
        if name.upper().startswith(("TOPIC_", "KAFKA_TOPICS_")):
            monkeypatch.delenv(name)


class TestTopicClass:
    def test_every_registered_topic_has_a_class(self) -> None:
        assert {topic_class(topic_name(topic)) for topic in Topic} == {
            TopicClass.REQUESTS,
            TopicClass.CALLBACKS,
            TopicClass.COMPLETIONS,
        }

    def test_requests_callbacks_and_completions_are_told_apart(self) -> None:
        assert topic_class("p.llm_provider.comparison_requested.v1", "p") is TopicClass.REQUESTS
        assert topic_class("p.llm_provider.comparison_result.v1", "p") is TopicClass.CALLBACKS
        assert topic_class("p.cj_assessment.failed.v1", "p") is TopicClass.COMPLETIONS

    def test_any_dead_letter_topic_is_a_dead_letter_topic(self) -> None:
        assert topic_class("anything.at.all.dlq") is TopicClass.DEAD_LETTERS

    def test_a_name_outside_the_registry_has_no_class(self) -> None:
        assert topic_class("custom.callbacks") is None
        assert topic_class("other.cj_assessment.failed.v1", "p") is None


class TestPlatformTopics:
    def test_lists_every_topic_and_the_dead_letter_topics_of_the_consumed_ones(self) -> None:
        names = platform_topics("acme")

        assert len(names) == len(set(names)) == len(Topic) + len(DEAD_LETTERED)
        assert {topic_name(topic, "acme") for topic in Topic} <= set(names)
        assert dlq_topic_name("acme.els.cj_assessment.requested.v1") in names
        assert dlq_topic_name("acme.cj_assessment.completed.v1") not in names


class TestTopicSpec:
    def test_defaults_are_the_general_partitions_and_replication_with_class_retention(
        self,
    ) -> None:
        settings = TopicSettings(topic_prefix="p")

        requests = settings.topic_spec("p.els.cj_assessment.requested.v1")
        letters = settings.topic_spec("p.els.cj_assessment.requested.v1.dlq")

        assert requests == TopicSpec(
            "p.els.cj_assessment.requested.v1", 3, 1, 7 * DAY_MS, TopicClass.REQUESTS
        )
        assert letters == TopicSpec(
            "p.els.cj_assessment.requested.v1.dlq", 3, 1, 28 * DAY_MS, TopicClass.DEAD_LETTERS
        )

    def test_a_class_setting_overrides_the_general_one_for_that_class_only(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_PARTITIONS", "6")
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")
        monkeypatch.setenv("TOPIC_PARTITIONS_REQUESTS", "12")
        monkeypatch.setenv("TOPIC_REPLICATION_FACTOR_DEAD_LETTERS", "2")
        monkeypatch.setenv("TOPIC_RETENTION_MS_CALLBACKS", "-1")
        settings = TopicSettings()

        layout = {
            spec.topic_class: (spec.partitions, spec.replication_factor, spec.retention_ms)
            for spec in settings.topic_specs(platform_topics())
        }

        assert layout == {
            TopicClass.REQUESTS: (12, 3, 7 * DAY_MS),
            TopicClass.CALLBACKS: (6, 3, -1),
            TopicClass.COMPLETIONS: (6, 3, 7 * DAY_MS),
            TopicClass.DEAD_LETTERS: (6, 2, 28 * DAY_MS),
        }

    def test_a_name_outside_the_registry_gets_the_general_layout_and_broker_retention(
        self,
    ) -> None:
        settings = TopicSettings(topic_partitions=4, topic_partitions_callbacks=9)

        assert settings.topic_spec("custom.callbacks") == TopicSpec("custom.callbacks", 4, 1)
        assert settings.topic_spec("custom.callbacks").configs() == {}

    def test_created_topics_get_their_retention_as_a_config(self) -> None:
        spec = TopicSettings().topic_spec("huleedu.assessment.scored.v1")

        assert spec.configs() == {"retention.ms": str(7 * DAY_MS)}

    def test_specs_are_listed_once_each_in_name_order(self) -> None:
        names = ["huleedu.b.dlq", "huleedu.a.dlq", "huleedu.b.dlq"]

        assert [spec.name for spec in TopicSettings().topic_specs(names)] == [
            "huleedu.a.dlq",
            "huleedu.b.dlq",
        ]

    def test_service_settings_keep_the_layout_and_default_to_creating_topics(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TOPIC_PARTITIONS_COMPLETIONS", "5")
        settings = ServiceSettings()

        assert settings.kafka_topics_mode is TopicsMode.CREATE
        assert settings.topic_spec("huleedu.cj_assessment.completed.v1").partitions == 5

    def test_verify_mode_is_read_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("KAFKA_TOPICS_MODE", "verify")

        assert ServiceSettings().kafka_topics_mode is TopicsMode.VERIFY

    def test_a_partition_count_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="topic_partitions_requests"):
            TopicSettings(topic_partitions_requests=0)


class TestTopicProblems:
    SPECS = (TopicSpec("t.a", 3, 2), TopicSpec("t.b", 3, 1), TopicSpec("t.c", 1, 1))

    def test_topics_with_at_least_the_partitions_and_replicas_have_no_problem(self) -> None:
        existing = {
            "t.a": TopicState("t.a", 3, 2),
            "t.b": TopicState("t.b", 6, 3),
            "t.c": TopicState("t.c", 1, 1),
        }

        assert topic_problems(self.SPECS, existing) == []

    def test_missing_and_too_small_topics_are_named(self) -> None:
        existing = {"t.a": TopicState("t.a", 3, 1), "t.b": TopicState("t.b", 1, 1)}

        assert topic_problems(self.SPECS, existing) == [
            "t.a has replication factor 1, expected at least 2",
            "t.b has 1 partitions, expected 3",
            "t.c is missing",
        ]
