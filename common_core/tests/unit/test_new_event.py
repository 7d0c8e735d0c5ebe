"""`new_event`: the one builder of outgoing envelopes."""

from __future__ import annotations

from uuid import uuid4

from common_core.events.cj import CJAssessmentRequestV1, EssayToProcess
from common_core.events.envelope import decode_event, encode_envelope, new_event


def test_an_event_names_its_topic_and_carries_the_correlation_id() -> None:
    payload = CJAssessmentRequestV1(
        entity_ref="b1", essays_to_process=[EssayToProcess(essay_id="e", text_content="t")]
    )
    correlation_id = uuid4()
    event = new_event(
        "huleedu.x.v1", payload, source_service="tests", correlation_id=correlation_id
    )
    assert event.event_type == "huleedu.x.v1"
    assert event.correlation_id == correlation_id
    assert decode_event(encode_envelope(event), CJAssessmentRequestV1) == event


def test_a_derived_event_id_is_kept() -> None:
    payload = CJAssessmentRequestV1(entity_ref="b1", essays_to_process=[])
    event_id = uuid4()
    event = new_event(
        "t", payload, source_service="tests", correlation_id=uuid4(), event_id=event_id
    )
    assert event.event_id == event_id
