"""The topic registry: `<prefix>.<area>.<event>.v<N>` names and the payload each topic carries."""

from __future__ import annotations

import re
from enum import StrEnum

DEFAULT_TOPIC_PREFIX = "huleedu"
DLQ_SUFFIX = ".dlq"
_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")


class Topic(StrEnum):
    """Logical topics; the value is the name without the configurable prefix."""

    CJ_ASSESSMENT_REQUESTED = "els.cj_assessment.requested.v1"
    CJ_ASSESSMENT_COMPLETED = "cj_assessment.completed.v1"
    CJ_ASSESSMENT_FAILED = "cj_assessment.failed.v1"
    LLM_COMPARISON_REQUESTED = "llm_provider.comparison_requested.v1"
    LLM_COMPARISON_RESULT = "llm_provider.comparison_result.v1"
    LLM_RUBRIC_REQUESTED = "llm_provider.rubric_requested.v1"
    LLM_RUBRIC_RESULT = "llm_provider.rubric_result.v1"
    ASSESSMENT_RESPONSE_COMPLETED = "assessment.response_completed.v1"
    ASSESSMENT_SCORED = "assessment.scored.v1"


def validate_prefix(prefix: str) -> str:
    """Return the prefix if it is a valid dotted lower-case name, else raise ValueError."""
    if not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"invalid topic prefix {prefix!r}: use lower-case dotted words")
    return prefix


def topic_name(topic: Topic, prefix: str = DEFAULT_TOPIC_PREFIX) -> str:
    """The full Kafka topic name of a logical topic under a prefix."""
    return f"{validate_prefix(prefix)}.{topic.value}"


def dlq_topic_name(topic: str) -> str:
    """The dead-letter topic of any topic."""
    return f"{topic}{DLQ_SUFFIX}"


def logical_topic(name: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> Topic | None:
    """The logical topic a full name refers to under a prefix, or None if it is not registered."""
    head = f"{prefix}."
    if not name.startswith(head):
        return None
    try:
        return Topic(name[len(head) :])
    except ValueError:
        return None


class TopicClass(StrEnum):
    """What a topic carries, for its partitions, replication factor and retention."""

    REQUESTS = "requests"
    CALLBACKS = "callbacks"
    COMPLETIONS = "completions"
    DEAD_LETTERS = "dead_letters"


TOPIC_CLASS: dict[Topic, TopicClass] = {
    Topic.CJ_ASSESSMENT_REQUESTED: TopicClass.REQUESTS,
    Topic.CJ_ASSESSMENT_COMPLETED: TopicClass.COMPLETIONS,
    Topic.CJ_ASSESSMENT_FAILED: TopicClass.COMPLETIONS,
    Topic.LLM_COMPARISON_REQUESTED: TopicClass.REQUESTS,
    Topic.LLM_COMPARISON_RESULT: TopicClass.CALLBACKS,
    Topic.LLM_RUBRIC_REQUESTED: TopicClass.REQUESTS,
    Topic.LLM_RUBRIC_RESULT: TopicClass.CALLBACKS,
    Topic.ASSESSMENT_RESPONSE_COMPLETED: TopicClass.COMPLETIONS,
    Topic.ASSESSMENT_SCORED: TopicClass.COMPLETIONS,
}

# The topics some service of the platform consumes, and so may dead-letter to `<topic>.dlq`.
DEAD_LETTERED: frozenset[Topic] = frozenset(
    {
        Topic.CJ_ASSESSMENT_REQUESTED,
        Topic.LLM_COMPARISON_REQUESTED,
        Topic.LLM_COMPARISON_RESULT,
        Topic.LLM_RUBRIC_REQUESTED,
        Topic.LLM_RUBRIC_RESULT,
    }
)


def topic_class(name: str, prefix: str = DEFAULT_TOPIC_PREFIX) -> TopicClass | None:
    """The class of a full topic name under a prefix; None for a name outside the registry."""
    if name.endswith(DLQ_SUFFIX):
        return TopicClass.DEAD_LETTERS
    topic = logical_topic(name, prefix)
    return TOPIC_CLASS[topic] if topic is not None else None


def platform_topics(prefix: str = DEFAULT_TOPIC_PREFIX) -> list[str]:
    """Every topic the platform's services use under a prefix, dead-letter topics included."""
    names = [topic_name(topic, prefix) for topic in Topic]
    dead_letters = [
        dlq_topic_name(topic_name(topic, prefix)) for topic in Topic if topic in DEAD_LETTERED
    ]
    return [*names, *dead_letters]
