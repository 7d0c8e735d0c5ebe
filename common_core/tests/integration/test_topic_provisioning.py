"""A service's topics at start-up on the real broker: created with their class's layout
(`KAFKA_TOPICS_MODE=create`), or only checked (`verify`), and a refusal that names the way out."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from common_core.runtime.infrastructure import prepare_service_infrastructure
from common_core.runtime.kafka_admin import (
    TopicCreationError,
    TopicsNotReadyError,
    TopicState,
    TopicVerifier,
    apply_topics,
    describe_topics,
)
from common_core.runtime.settings import ServiceSettings, TopicsMode
from common_core.topics import Topic, dlq_topic_name, topic_name

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix() -> str:
    return f"prov{uuid.uuid4().hex[:12]}"


def settings_for(kafka: str, database_url: str, prefix: str, **layout: Any) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=kafka, database_url=database_url, topic_prefix=prefix, **layout
    )


async def topics_under(kafka: str, prefix: str) -> dict[str, TopicState]:
    return {n: s for n, s in (await describe_topics(kafka)).items() if n.startswith(f"{prefix}.")}


class TestCreateMode:
    async def test_creates_the_topics_with_their_class_layout(
        self, kafka_bootstrap_servers: str, database_url: str, prefix: str, tmp_path: Path
    ) -> None:
        settings = settings_for(
            kafka_bootstrap_servers, database_url, prefix, topic_partitions_callbacks=2
        )
        callbacks = topic_name(Topic.LLM_COMPARISON_RESULT, prefix)

        await prepare_service_infrastructure(
            settings, tmp_path, [callbacks, dlq_topic_name(callbacks)]
        )

        assert await topics_under(kafka_bootstrap_servers, prefix) == {
            callbacks: TopicState(callbacks, 2, 1),
            dlq_topic_name(callbacks): TopicState(dlq_topic_name(callbacks), 3, 1),
        }

    async def test_a_topic_the_broker_refuses_fails_start_up_naming_verify_mode(
        self, kafka_bootstrap_servers: str, database_url: str, prefix: str, tmp_path: Path
    ) -> None:
        settings = settings_for(
            kafka_bootstrap_servers, database_url, prefix, topic_replication_factor_completions=3
        )
        completed = topic_name(Topic.CJ_ASSESSMENT_COMPLETED, prefix)

        with pytest.raises(TopicCreationError) as refused:
            await prepare_service_infrastructure(settings, tmp_path, [completed])

        message = str(refused.value)
        assert message.startswith(f"the broker refused to create {completed} (InvalidReplication")
        assert "set KAFKA_TOPICS_MODE=verify and create them with `huleedu topics apply`" in message


class TestVerifyMode:
    async def test_start_up_creates_nothing(
        self, kafka_bootstrap_servers: str, database_url: str, prefix: str, tmp_path: Path
    ) -> None:
        settings = settings_for(
            kafka_bootstrap_servers, database_url, prefix, kafka_topics_mode=TopicsMode.VERIFY
        )

        await prepare_service_infrastructure(
            settings, tmp_path, [topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix)]
        )

        assert await topics_under(kafka_bootstrap_servers, prefix) == {}

    async def test_the_check_names_missing_topics_and_passes_once_they_exist(
        self, kafka_bootstrap_servers: str, prefix: str
    ) -> None:
        settings = ServiceSettings(topic_prefix=prefix)
        specs = settings.topic_specs(
            [
                topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix),
                topic_name(Topic.ASSESSMENT_SCORED, prefix),
            ]
        )
        verifier = TopicVerifier(kafka_bootstrap_servers, specs)

        with pytest.raises(TopicsNotReadyError) as not_ready:
            await verifier.check()
        assert str(not_ready.value) == "; ".join(f"{spec.name} is missing" for spec in specs)

        await apply_topics(kafka_bootstrap_servers, specs)
        await verifier.check()
