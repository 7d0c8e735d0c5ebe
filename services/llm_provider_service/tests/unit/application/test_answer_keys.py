"""The Kafka key of an answer: the request's `callback_key`, else the key the request arrived
with, else its request id; the same on the synchronous path, in batch mode and for a request
rejected unread (a sender that spreads its requests over partitions still gets the answers of
one group on one partition)."""

from __future__ import annotations

import uuid

import pytest

from common_core.errors import ErrorCode
from common_core.events.envelope import RawEnvelope
from common_core.events.llm import LLMComparisonRequestV1, LLMConfig, LLMMode, LLMProviderName
from llm_provider_service.application.answering import answer_key
from llm_provider_service.application.batch_results import BatchCallbacks
from llm_provider_service.application.batching import BatchIntake
from llm_provider_service.application.ports import ItemOutcome
from llm_provider_service.config import Settings
from llm_provider_service.domain.errors import ProviderServerError
from llm_provider_service.entrypoints.consumers import rejection_callback
from llm_provider_service.testing.fakes import FakeTransactions
from llm_provider_service.testing.requests import comparison_envelope, rubric_envelope

CASES = [  # (callback_key, message key, expected: "request_id" stands for the request's id)
    ("batch-7", "request-key", "batch-7"),
    ("batch-7", None, "batch-7"),
    (None, "request-key", "request-key"),
    (None, None, "request_id"),
]


def _comparison(callback_key: str | None) -> LLMComparisonRequestV1:
    request = comparison_envelope("requests", "callbacks").data
    return request.model_copy(update={"callback_key": callback_key})


class TestAnswerKey:
    @pytest.mark.parametrize(("callback_key", "message_key", "expected"), CASES)
    def test_callback_key_then_message_key_then_request_id(
        self, callback_key: str | None, message_key: str | None, expected: str
    ) -> None:
        request = _comparison(callback_key)
        wanted = str(request.request_id) if expected == "request_id" else expected
        assert answer_key(request, message_key) == wanted

    def test_a_rubric_request_is_keyed_the_same_way(self) -> None:
        request = rubric_envelope("requests", "callbacks").data
        keyed = request.model_copy(update={"callback_key": "job-1"})
        assert answer_key(keyed, "response-1") == "job-1"
        assert answer_key(request, "response-1") == "response-1"

    def test_an_empty_callback_key_is_outside_the_contract(self) -> None:
        data = _comparison(None).model_dump(mode="json")
        with pytest.raises(ValueError, match="callback_key"):
            LLMComparisonRequestV1.model_validate({**data, "callback_key": ""})


class TestBatchModeCallbackKeys:
    @pytest.mark.parametrize(("callback_key", "message_key", "expected"), CASES)
    async def test_a_batch_item_is_answered_under_the_same_key(
        self, callback_key: str | None, message_key: str | None, expected: str
    ) -> None:
        settings = Settings(openai_api_key="sk-test")
        transactions = FakeTransactions()
        intake = BatchIntake(settings, transactions, [LLMProviderName.OPENAI])
        envelope = comparison_envelope(
            "requests", "callbacks", provider=LLMProviderName.OPENAI, mode=LLMMode.BATCH
        )
        envelope = envelope.model_copy(
            update={"data": envelope.data.model_copy(update={"callback_key": callback_key})}
        )
        assert await intake.enqueue(envelope, message_key)
        (item,) = (stored.request for stored in transactions.batches.items.values())
        outcome = ItemOutcome(str(item.request_id), error=ProviderServerError("503"))

        callback = BatchCallbacks(settings).callback(item, outcome)

        wanted = str(item.request_id) if expected == "request_id" else expected
        assert callback.key == wanted
        assert callback.envelope.data.request_id == envelope.data.request_id


class TestRejectedRequestKeys:
    def _raw(self, **data: object) -> RawEnvelope:
        request = _comparison(None).model_copy(update={"llm_config": LLMConfig()})
        return RawEnvelope(
            event_id=uuid.uuid4(),
            event_type="requests",
            event_timestamp="2026-12-07T00:00:00Z",
            source_service="test",
            correlation_id=uuid.uuid4(),
            data={**request.model_dump(mode="json"), **data},
        )

    def test_a_rejected_request_is_answered_under_its_callback_key(self) -> None:
        answer = rejection_callback(
            self._raw(callback_key="batch-7"),
            LLMComparisonRequestV1,
            ErrorCode.VALIDATION,
            "request rejected",
            fields=[],
            key="request-key",
        )
        assert answer is not None
        assert answer.key == "batch-7"

    def test_an_unusable_callback_key_falls_back_to_the_message_key(self) -> None:
        answer = rejection_callback(
            self._raw(callback_key=""),
            LLMComparisonRequestV1,
            ErrorCode.VALIDATION,
            "request rejected",
            fields=[],
            key="request-key",
        )
        assert answer is not None
        assert answer.key == "request-key"
