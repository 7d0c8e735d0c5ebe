"""Requests that break the contract's limits are answered with a failed event naming the field,
and never hold up the valid requests behind them on the same key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    batch_in_state,
    outcome_events,
    running_service,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
)
from common_core.errors import ErrorCode
from common_core.events.cj import CJAssessmentFailedV1
from common_core.limits import MAX_ESSAYS_PER_REQUEST
from common_core.runtime.kafka_producer import OutgoingMessage
from common_core.testing import read_topic
from common_core.topics import Topic, dlq_topic_name

pytestmark = pytest.mark.integration

SAME_KEY = "one-upstream-key"


def _bad_request(settings: Settings, entity_ref: str, changes: dict[str, Any]) -> bytes:
    """A request's wire form with some fields replaced by what the contract refuses."""
    document = request_envelope(settings, entity_ref, essays(3)).model_dump(mode="json")
    data = document["data"]
    if "text_content" in changes:
        data["essays_to_process"][0]["text_content"] = changes["text_content"]
    if "essay_id" in changes:
        data["essays_to_process"][0]["essay_id"] = changes["essay_id"]
    if "entity_ref" in changes:
        data["entity_ref"] = changes["entity_ref"]
    if "essay_count" in changes:
        data["essays_to_process"] = [
            {"essay_id": f"e{i}", "text_content": "x"} for i in range(changes["essay_count"])
        ]
    # json.dumps escapes the NUL as \u0000, exactly as an upstream's JSON encoder would.
    return json.dumps(document).encode()


class TestLimitsAtTheBoundary:
    async def test_each_bad_request_fails_naming_its_field_and_the_valid_one_after_it_completes(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        long_ref = "r" * 100_000
        cases: list[tuple[str, dict[str, Any], str]] = [
            (
                "nul-essay",
                {"text_content": "An essay with a \x00 inside."},
                "essays_to_process.0.text_content",
            ),
            ("nul-id", {"essay_id": "e\x000"}, "essays_to_process.0.essay_id"),
            ("long-ref", {"entity_ref": long_ref}, "entity_ref"),
            ("too-many", {"essay_count": 20_000}, "essays_to_process"),
        ]
        assert MAX_ESSAYS_PER_REQUEST < 20_000
        topic = settings.topic(Topic.CJ_ASSESSMENT_REQUESTED)
        async with (
            running_service(settings) as service,
            judging(settings, service.producer),
        ):
            for ref, changes, _ in cases:
                await service.producer.send(
                    OutgoingMessage(topic, _bad_request(settings, ref, changes), key=SAME_KEY)
                )
                valid = request_envelope(settings, f"valid-after-{ref}", essays(3))
                await service.producer.publish(topic, valid, key=SAME_KEY)
            for ref, _, _ in cases:
                await batch_in_state(service, f"valid-after-{ref}", BatchState.COMPLETED)
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=len(cases)
            )

        by_ref = {event.data.entity_ref: event for event in failed}
        assert len(failed) == len(cases)
        for ref, changes, field in cases:
            event = by_ref[changes.get("entity_ref", ref)]
            detail = event.data.error_detail
            assert detail.code == ErrorCode.VALIDATION
            assert detail.details["field"] == field
            assert field in detail.message
            assert event.data.cj_assessment_job_id is None
        # Operators see them in the DLQ too; the upstream learned of them from the events.
        dead = await read_topic(
            kafka_bootstrap_servers, dlq_topic_name(topic), expected=len(cases), settle=1.0
        )
        assert len(dead) == len(cases)
        assert {dict(r.headers)["x-dlq-error-code"] for r in dead} == {b"payload_invalid"}

    async def test_the_failed_event_repeats_the_same_event_id_when_the_request_is_redelivered(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        topic = settings.topic(Topic.CJ_ASSESSMENT_REQUESTED)
        raw = _bad_request(settings, "twice", {"text_content": "\x00"})
        async with running_service(settings) as service:
            await service.producer.send(OutgoingMessage(topic, raw, key=SAME_KEY))
            await service.producer.send(OutgoingMessage(topic, raw, key=SAME_KEY))
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=2
            )
        assert len(failed) == 2
        assert failed[0].event_id == failed[1].event_id  # consumers de-duplicate on it
