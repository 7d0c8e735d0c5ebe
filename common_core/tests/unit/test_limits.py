"""The contract-boundary limits: what PostgreSQL cannot store is refused, sizes are bounded, and
errors name the field without repeating its value."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.cj import CJAssessmentRequestV1
from common_core.events.envelope import EventEnvelope, PayloadValidationError, decode_event
from common_core.events.llm import LLMComparisonRequestV1, LLMRubricRequestV1
from common_core.limits import (
    MAX_ESSAY_CHARS,
    MAX_ESSAYS_PER_REQUEST,
    MAX_ID_CHARS,
    MAX_METADATA_BYTES,
    NO_NUL_PATTERN,
    clean_text,
    storable_text_problem,
)
from common_core.runtime.error_text import describe_error
from common_core.runtime.failures import is_transient


def _request(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "entity_ref": "batch-1",
        "essays_to_process": [
            {"essay_id": "e1", "text_content": "One."},
            {"essay_id": "e2", "text_content": "Two."},
        ],
    }
    data.update(changes)
    return data


def _fields(exc: pytest.ExceptionInfo[ValidationError]) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.value.errors()]


class TestStorableText:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [("ok", None), ("a\x00b", "NUL"), ("a\ud800b", "surrogate"), ("é ✓ 漢字 🙂", None)],
    )
    def test_the_problem_is_named(self, value: str, problem: str | None) -> None:
        found = storable_text_problem(value)
        assert (found is None) if problem is None else (problem in (found or ""))

    def test_cleaning_replaces_what_cannot_be_stored_and_cuts_to_size(self) -> None:
        assert clean_text("a\x00b\udc80c", 100) == "a\ufffdb\ufffdc"
        assert clean_text("x" * 50, 10) == "x" * 10

    @given(st.text())
    def test_clean_text_is_always_storable(self, value: str) -> None:
        assert storable_text_problem(clean_text(value, 1000)) is None


class TestCJRequestLimits:
    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            (
                {"essays_to_process": [{"essay_id": "e1", "text_content": "a\x00"}]},
                "essays_to_process.0.text_content",
            ),
            (
                {"essays_to_process": [{"essay_id": "e\x00", "text_content": "a"}]},
                "essays_to_process.0.essay_id",
            ),
            (
                {"essays_to_process": [{"essay_id": "e", "text_content": "\udfff"}]},
                "essays_to_process.0.text_content",
            ),
            ({"entity_ref": "r" * (MAX_ID_CHARS + 1)}, "entity_ref"),
            ({"entity_ref": "a\x00"}, "entity_ref"),
            (
                {
                    "essays_to_process": [
                        {"essay_id": "e", "text_content": "w" * (MAX_ESSAY_CHARS + 1)}
                    ]
                },
                "essays_to_process.0.text_content",
            ),
            (
                {
                    "essays_to_process": [
                        {"essay_id": f"e{i}", "text_content": "x"}
                        for i in range(MAX_ESSAYS_PER_REQUEST + 1)
                    ]
                },
                "essays_to_process",
            ),
            ({"essay_instructions": "\x00"}, "essay_instructions"),
            ({"judge_rubric": "r" * 20_001}, "judge_rubric"),
            ({"course_code": "\x00"}, "course_code"),
        ],
    )
    def test_a_request_beyond_a_limit_is_refused_naming_the_field(
        self, changes: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationError) as exc:
            CJAssessmentRequestV1.model_validate(_request(**changes))
        assert _fields(exc) == [field]

    def test_the_error_never_repeats_the_refused_text(self) -> None:
        secret = "a private essay sentence\x00"
        envelope = EventEnvelope[CJAssessmentRequestV1](
            event_type="t",
            source_service="s",
            correlation_id=uuid4(),
            data=CJAssessmentRequestV1.model_validate(_request()),
        ).model_dump(mode="json")
        envelope["data"]["essays_to_process"][0]["text_content"] = secret

        with pytest.raises(PayloadValidationError) as exc:
            decode_event(json.dumps(envelope), CJAssessmentRequestV1)
        assert "private essay" not in str(exc.value)
        assert exc.value.fields[0].field == "essays_to_process.0.text_content"
        assert exc.value.envelope is not None
        assert exc.value.envelope.data["entity_ref"] == "batch-1"

    def test_a_lone_surrogate_escape_on_the_wire_is_a_payload_error_not_a_crash(self) -> None:
        envelope = EventEnvelope[CJAssessmentRequestV1](
            event_type="t",
            source_service="s",
            correlation_id=uuid4(),
            data=CJAssessmentRequestV1.model_validate(_request()),
        ).model_dump_json()
        raw = envelope.replace('"One."', '"\\ud800"').encode()
        with pytest.raises(PayloadValidationError) as exc:
            decode_event(raw, CJAssessmentRequestV1)
        assert [f.field for f in exc.value.fields] == ["essays_to_process.0.text_content"]

    def test_the_json_schema_states_the_limits(self) -> None:
        schema = CJAssessmentRequestV1.model_json_schema()
        ref = schema["properties"]["entity_ref"]
        assert ref["maxLength"] == MAX_ID_CHARS
        assert ref["pattern"] == NO_NUL_PATTERN
        assert schema["properties"]["essays_to_process"]["maxItems"] == MAX_ESSAYS_PER_REQUEST


class TestLLMRequestLimits:
    def _comparison(self, **changes: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "request_id": str(uuid4()),
            "essay_a": {"essay_id": "a", "text_content": "A."},
            "essay_b": {"essay_id": "b", "text_content": "B."},
            "callback_topic": "huleedu.llm_provider.comparison_result.v1",
        }
        data.update(changes)
        return data

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"essay_instructions": "\x00"}, "essay_instructions"),
            ({"callback_topic": "no spaces allowed"}, "callback_topic"),
            ({"request_metadata": {"batch": "\x00"}}, "request_metadata"),
            ({"request_metadata": {"pad": "x" * MAX_METADATA_BYTES}}, "request_metadata"),
        ],
    )
    def test_a_comparison_request_beyond_a_limit_is_refused(
        self, changes: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationError) as exc:
            LLMComparisonRequestV1.model_validate(self._comparison(**changes))
        assert _fields(exc) == [field]

    def test_a_rubric_request_with_a_nul_in_the_answer_is_refused(self) -> None:
        with pytest.raises(ValidationError) as exc:
            LLMRubricRequestV1.model_validate(
                {
                    "request_id": str(uuid4()),
                    "answer_text": "my answer\x00",
                    "callback_topic": "t",
                }
            )
        assert _fields(exc) == ["answer_text"]


class TestErrorDetail:
    def test_an_error_quoting_bad_input_is_made_storable_rather_than_refused(self) -> None:
        detail = ErrorDetail(
            code=ErrorCode.VALIDATION,
            message="bad \x00 value " + "m" * 3000,
            correlation_id=uuid4(),
            service="s",
            operation="o",
            details={"k\x00": ["v\ud800"]},
        )
        assert "\x00" not in detail.message
        assert len(detail.message) == 2000
        assert detail.details == {"k\ufffd": ["v\ufffd"]}


class TestTransientFailures:
    @pytest.mark.parametrize(
        "exc",
        [
            ConnectionRefusedError(111, "refused"),
            ConnectionResetError(),
            TimeoutError(),
            asyncpg.exceptions.CannotConnectNowError("starting up"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
            asyncpg.exceptions.SerializationError("could not serialize"),
            asyncpg.exceptions.InterfaceError("connection is closed"),
        ],
    )
    def test_infrastructure_failures_are_transient(self, exc: BaseException) -> None:
        assert is_transient(exc)

    @pytest.mark.parametrize(
        "exc",
        [
            ValueError("bad"),
            KeyError("k"),
            asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence 0x00"),
            asyncpg.exceptions.UniqueViolationError("duplicate key"),
            asyncpg.exceptions.DataError("invalid input for query argument"),
        ],
    )
    def test_failures_of_the_data_are_not(self, exc: BaseException) -> None:
        assert not is_transient(exc)

    def test_the_cause_chain_is_followed(self) -> None:
        wrapped = sa_exc.DBAPIError("INSERT ...", {}, Exception("inner"))
        wrapped.__cause__ = ConnectionResetError("reset")
        assert is_transient(wrapped)
        assert not is_transient(sa_exc.DBAPIError("INSERT ...", {}, Exception("inner")))


class TestDescribeError:
    def test_sql_parameters_and_key_values_are_left_out(self) -> None:
        exc = sa_exc.DBAPIError(
            "INSERT INTO cj_essays (text) VALUES ($1)",
            ("a private essay",),
            Exception("duplicate key DETAIL:  Key (essay_id)=(secret-id) already exists."),
        )
        text = describe_error(exc)
        assert "private essay" not in text
        assert "secret-id" not in text
        assert "INSERT" not in text
        assert text.startswith("DBAPIError")
