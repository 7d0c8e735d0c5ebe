"""`huleedu topics plan|apply` lays out `common_core.topics.platform_topics`: every topic a
service creates (or, in verify mode, checks) must be in it, or `apply` would leave that service
not ready."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cj_assessment_service.config import Settings as CJSettings
from cj_assessment_service.entrypoints.runtime import SERVICE as CJ
from common_core.topics import platform_topics
from llm_provider_service.config import Settings as LLMSettings
from llm_provider_service.entrypoints.runtime import SERVICE as LLM
from submission_service.config import Settings as SubmissionSettings
from submission_service.entrypoints.runtime import SERVICE as SUBMISSION

SERVICES: list[tuple[str, Callable[..., Any], Callable[[Any], Sequence[str]]]] = [
    ("cj_assessment_service", CJSettings, CJ.topics),
    ("llm_provider_service", LLMSettings, LLM.topics),
    ("submission_service", SubmissionSettings, SUBMISSION.topics),
]


@pytest.mark.parametrize(("name", "settings", "topics"), SERVICES, ids=[s[0] for s in SERVICES])
def test_the_plan_holds_every_topic_the_service_uses(
    name: str, settings: Callable[..., Any], topics: Callable[[Any], Sequence[str]]
) -> None:
    service_topics = set(topics(settings(topic_prefix="acme")))

    assert service_topics - set(platform_topics("acme")) == set(), name


def test_every_planned_topic_is_used_by_some_service() -> None:
    used = {topic for _, settings, topics in SERVICES for topic in topics(settings())}

    assert set(platform_topics()) == used
