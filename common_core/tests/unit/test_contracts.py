"""Every contract survives a JSON round trip in its envelope; malformed input fails specifically."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events import (
    PAYLOAD_BY_TOPIC,
    CJAssessmentRequestV1,
    EnvelopeDecodeError,
    EssayToProcess,
    EventEnvelope,
    LLMComparisonResultV1,
    LLMRubricResultV1,
    PayloadValidationError,
    decode_envelope,
    decode_event,
    encode_envelope,
)
from common_core.tests.contract_strategies import STRATEGIES
from common_core.topics import Topic, dlq_topic_name, logical_topic, topic_name


def _envelope(topic: Topic, payload: BaseModel) -> EventEnvelope[Any]:
    return EventEnvelope[Any](
        event_type=topic_name(topic),
        source_service="tests",
        correlation_id=uuid4(),
        data=payload,
    )


class TestRoundTrip:
    @pytest.mark.parametrize("topic", list(Topic))
    @settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(data=st.data())
    def test_every_payload_survives_a_json_round_trip_in_its_envelope(
        self, topic: Topic, data: st.DataObject
    ) -> None:
        model = PAYLOAD_BY_TOPIC[topic]
        payload = data.draw(STRATEGIES[model])
        envelope = _envelope(topic, payload)

        decoded = decode_event(encode_envelope(envelope), model)

        assert decoded == envelope
        assert decoded.data == payload
        assert decoded.event_timestamp.utcoffset() is not None


class TestMalformedInput:
    def _good_request(self) -> dict[str, Any]:
        payload = CJAssessmentRequestV1(
            entity_ref="bos-1",
            essays_to_process=[EssayToProcess(essay_id="e1", text_content="x")],
        )
        document: dict[str, Any] = json.loads(
            encode_envelope(_envelope(Topic.CJ_ASSESSMENT_REQUESTED, payload))
        )
        return document

    def test_bytes_that_are_not_json_raise_envelope_error(self) -> None:
        with pytest.raises(EnvelopeDecodeError, match="not UTF-8 JSON"):
            decode_envelope(b"\xff\xfe not json")

    def test_json_array_raises_envelope_error(self) -> None:
        with pytest.raises(EnvelopeDecodeError, match="not an object"):
            decode_envelope(b"[1, 2]")

    @pytest.mark.parametrize("field", ["event_id", "event_type", "correlation_id", "data"])
    def test_missing_envelope_field_names_the_field(self, field: str) -> None:
        document = self._good_request()
        del document[field]
        with pytest.raises(EnvelopeDecodeError, match=field):
            decode_envelope(json.dumps(document))

    @pytest.mark.parametrize(
        "field", ["event_id", "event_type", "event_timestamp", "correlation_id", "data"]
    )
    def test_decode_event_names_a_missing_envelope_field(self, field: str) -> None:
        # The one-pass decoder would fill in event_id and event_timestamp from their defaults;
        # a message without them must still be rejected as an invalid envelope.
        document = self._good_request()
        del document[field]
        with pytest.raises(EnvelopeDecodeError, match=field):
            decode_event(json.dumps(document).encode(), CJAssessmentRequestV1)

    def test_naive_timestamp_is_rejected(self) -> None:
        document = self._good_request()
        document["event_timestamp"] = "2026-01-01T12:00:00"
        with pytest.raises(EnvelopeDecodeError, match="event_timestamp"):
            decode_envelope(json.dumps(document))

    def test_unknown_envelope_fields_are_tolerated(self) -> None:
        document = self._good_request()
        document["trace_flags"] = "01"
        assert decode_envelope(json.dumps(document)).event_type.endswith("requested.v1")

    def test_payload_of_wrong_shape_raises_payload_error_with_location(self) -> None:
        document = self._good_request()
        document["data"]["essays_to_process"] = [{"essay_id": "e1"}]
        with pytest.raises(PayloadValidationError, match=r"essays_to_process\.0\.text_content"):
            decode_event(json.dumps(document), CJAssessmentRequestV1)

    def test_comparison_result_needs_exactly_one_outcome(self) -> None:
        base = {"request_id": str(uuid4()), "provider": "heuristic", "model": "h1"}
        with pytest.raises(ValueError, match="exactly one"):
            LLMComparisonResultV1.model_validate(base)
        error = ErrorDetail(
            code=ErrorCode.TIMEOUT,
            message="slow",
            correlation_id=uuid4(),
            service="llm",
            operation="compare",
        )
        with pytest.raises(ValueError, match="exactly one"):
            LLMComparisonResultV1.model_validate(
                {**base, "winner": "essay_a", "confidence": 3, "error_detail": error.model_dump()}
            )

    def test_rubric_scores_outside_one_to_five_are_rejected(self) -> None:
        with pytest.raises(ValueError, match="less than or equal to 5"):
            LLMRubricResultV1.model_validate(
                {
                    "request_id": str(uuid4()),
                    "provider": "h",
                    "model": "m",
                    "overall": 3,
                    "scores": {"relevance": 6, "depth": 1, "clarity": 1, "technical": 1},
                }
            )

    def test_unknown_error_code_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="code"):
            ErrorDetail.model_validate(
                {
                    "code": "oops",
                    "message": "m",
                    "correlation_id": str(uuid4()),
                    "service": "s",
                    "operation": "o",
                }
            )


class TestTopics:
    def test_names_follow_prefix_area_event_version(self) -> None:
        assert topic_name(Topic.CJ_ASSESSMENT_COMPLETED) == "huleedu.cj_assessment.completed.v1"
        assert topic_name(Topic.CJ_ASSESSMENT_REQUESTED, "acme") == (
            "acme.els.cj_assessment.requested.v1"
        )
        for topic in Topic:
            assert topic.value.rsplit(".", 1)[1].startswith("v")

    def test_dlq_and_reverse_lookup(self) -> None:
        name = topic_name(Topic.LLM_RUBRIC_RESULT, "x")
        assert dlq_topic_name(name) == "x.llm_provider.rubric_result.v1.dlq"
        assert logical_topic(name, "x") is Topic.LLM_RUBRIC_RESULT
        assert logical_topic("other.topic", "x") is None

    def test_invalid_prefix_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid topic prefix"):
            topic_name(Topic.ASSESSMENT_SCORED, "Bad Prefix")
