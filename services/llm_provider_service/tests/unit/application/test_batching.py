"""Batch mode's use cases with the service's fake unit of work and a hand-written fake of the
provider's batch API: which requests take the batch path, refusals, lost submissions, polling
backoff."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from prometheus_client import REGISTRY

from common_core.errors import ErrorCode
from common_core.events.llm import (
    LLMComparisonResultV1,
    LLMConfig,
    LLMMode,
    LLMProviderName,
    ReferencePassage,
)
from llm_provider_service.application.batch_results import BatchCallbacks
from llm_provider_service.application.batching import (
    BatchIntake,
    BatchPoller,
    BatchSubmitter,
    cache_friendly_order,
    chat_request,
)
from llm_provider_service.application.judging import build_chat_request, prompt_call
from llm_provider_service.application.ports import (
    BatchAPI,
    BatchCall,
    BatchProgress,
    ChatReply,
    ItemOutcome,
    QueuedRequest,
)
from llm_provider_service.config import Settings
from llm_provider_service.domain.batches import BatchEnd
from llm_provider_service.domain.errors import (
    JudgeError,
    ProviderRequestRejectedError,
    ProviderServerError,
)
from llm_provider_service.testing.fakes import FakeBatches, FakeProviderBatch, FakeTransactions
from llm_provider_service.testing.requests import comparison_envelope, rubric_envelope
from llm_provider_service.testing.sample_essays import (
    DEVELOPED_ON_TOPIC,
    OFF_TOPIC_DEVELOPED,
    ONE_LINE,
)

OPENAI = LLMProviderName.OPENAI


@dataclass
class FakeBatchAPI:
    """A provider batch API whose submit can fail after (or before) creating the batch."""

    submit_error: JudgeError | None = None
    created_before_error: bool = False
    finds_by_key: bool = True
    running: bool = True
    progress_error: JudgeError | None = None
    submitted: list[list[BatchCall]] = field(default_factory=list)

    async def submit(self, calls: Sequence[BatchCall], *, key: str) -> str:
        if self.submit_error is None or self.created_before_error:
            self.submitted.append(list(calls))
        if self.submit_error is not None:
            raise self.submit_error
        return f"batch-{len(self.submitted)}"

    async def find(
        self, key: str, *, item_count: int, created_after: datetime, known: Collection[str]
    ) -> str | None:
        found = f"batch-{len(self.submitted)}" if self.submitted else None
        return found if found not in known else None

    async def progress(self, batch_id: str) -> BatchProgress:
        if self.progress_error is not None:
            raise self.progress_error
        if self.running:
            return BatchProgress(None, "in_progress")
        return BatchProgress(BatchEnd.COMPLETED, "completed")

    async def outcomes(self, batch_id: str) -> list[ItemOutcome]:
        return []


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "sk-test",
        "llm_batch_window_seconds": 0.0,
        "llm_batch_poll_initial_seconds": 1.0,
        "llm_batch_poll_max_seconds": 3.0,
    }
    return Settings(**(values | overrides))


def _wired(api: BatchAPI, settings: Settings | None = None) -> tuple[Any, ...]:
    settings = settings or _settings()
    transactions = FakeTransactions()
    apis = {OPENAI: api}
    callbacks = BatchCallbacks(settings)
    return (
        transactions,
        BatchIntake(settings, transactions, apis),
        BatchSubmitter(settings, transactions, apis, callbacks),
        BatchPoller(settings, transactions, apis, callbacks),
    )


def _results(transactions: FakeTransactions) -> list[LLMComparisonResultV1]:
    return [event.envelope.data for event in transactions.outbox]


def _batches(transactions: FakeTransactions) -> list[FakeProviderBatch]:
    return list(transactions.batches.provider_batches.values())


def _request(
    mode: LLMMode | None = LLMMode.BATCH, provider: LLMProviderName | None = OPENAI
) -> Any:
    return comparison_envelope("requests", "callbacks", provider=provider, mode=mode)


class TestWhichRequestsTakeTheBatchPath:
    def test_batch_mode_with_a_provider_that_has_a_batch_api(self) -> None:
        _, intake, _, _ = _wired(FakeBatchAPI())
        assert intake.takes(_request().data)

    def test_sync_mode_the_heuristic_and_unconfigured_providers_answer_at_once(self) -> None:
        _, intake, _, _ = _wired(FakeBatchAPI())
        assert not intake.takes(_request(mode=LLMMode.SYNC).data)
        assert not intake.takes(_request(mode=None).data)  # the default mode is sync
        assert not intake.takes(_request(provider=LLMProviderName.HEURISTIC).data)
        assert not intake.takes(_request(provider=LLMProviderName.ANTHROPIC).data)

    def test_the_default_mode_setting_applies_when_a_request_names_none(self) -> None:
        _, intake, _, _ = _wired(FakeBatchAPI(), _settings(llm_default_mode="batch"))
        assert intake.takes(_request(mode=None).data)


class TestSubmission:
    async def test_a_refused_submission_answers_every_request_with_the_error(self) -> None:
        api = FakeBatchAPI(submit_error=ProviderRequestRejectedError("bad model (400)"))
        transactions, intake, submitter, _ = _wired(api)
        for _ in range(3):
            await intake.enqueue(_request(), key=None)

        assert await submitter.submit_due()

        results = _results(transactions)
        assert len(results) == 3
        codes = {(r.error_detail.code, r.error_detail.retryable) for r in results if r.error_detail}
        assert codes == {(ErrorCode.VALIDATION, False)}
        assert [b.outcome for b in _batches(transactions)] == ["refused"]

    async def test_a_submission_lost_on_the_way_back_is_adopted_not_resubmitted(self) -> None:
        api = FakeBatchAPI(submit_error=ProviderServerError("timeout"), created_before_error=True)
        transactions, intake, submitter, _ = _wired(api)
        await intake.enqueue(_request(), key=None)
        assert await submitter.submit_due()
        assert [b.state for b in _batches(transactions)] == ["submitting"]
        assert _results(transactions) == []

        api.submit_error = None
        assert not await submitter.reconcile_one()  # the lease still runs
        transactions.batches.advance(3600)
        assert await submitter.reconcile_one()

        assert len(api.submitted) == 1
        assert [b.state for b in _batches(transactions)] == ["submitted"]

    async def test_a_provider_found_by_shape_submits_no_chunk_while_one_is_unrecorded(
        self,
    ) -> None:
        """A lost Anthropic submission can only be matched by its shape: while it is unknown
        whether the provider has it, no other chunk is submitted, so the batch the
        reconciliation finds can only be its own."""
        api = FakeBatchAPI(
            submit_error=ProviderServerError("timeout"),
            created_before_error=True,
            finds_by_key=False,
        )
        transactions, intake, submitter, _ = _wired(api, _settings(llm_batch_max_size=1))
        await intake.enqueue(_request(), key=None)
        await intake.enqueue(_request(), key=None)
        assert await submitter.submit_due()
        api.submit_error = None

        assert not await submitter.submit_due()  # the first chunk's fate is unknown
        transactions.batches.advance(3600)
        assert await submitter.reconcile_one()
        assert await submitter.submit_due()

        assert len(api.submitted) == 2
        assert [b.provider_batch_id for b in _batches(transactions)] == ["batch-1", "batch-2"]

    async def test_a_submission_that_never_arrived_is_submitted_on_reconciliation(self) -> None:
        api = FakeBatchAPI(submit_error=ProviderServerError("connection refused"))
        transactions, intake, submitter, _ = _wired(api)
        await intake.enqueue(_request(), key=None)
        await submitter.submit_due()
        api.submit_error = None
        transactions.batches.advance(3600)

        assert await submitter.reconcile_one()

        assert len(api.submitted) == 1
        assert [b.state for b in _batches(transactions)] == ["submitted"]


class EndingFails(FakeBatches):
    """A store whose transaction fails as the batch is marked ended (the database went away)."""

    async def end_batch(self, batch_id: UUID, outcome: str) -> None:
        raise ConnectionResetError("connection reset by peer")


def _ended_batches(outcome: str) -> float:
    labels = {"provider": "openai", "event": outcome}
    return REGISTRY.get_sample_value("huleedu_llm_provider_batches_total", labels) or 0.0


class TestPolling:
    async def test_a_poll_whose_transaction_fails_stages_and_counts_nothing(self) -> None:
        settings = _settings()
        transactions = FakeTransactions(EndingFails())
        api = FakeBatchAPI(running=False)
        apis = {OPENAI: api}
        callbacks = BatchCallbacks(settings)
        intake = BatchIntake(settings, transactions, apis)
        submitter = BatchSubmitter(settings, transactions, apis, callbacks)
        poller = BatchPoller(settings, transactions, apis, callbacks)
        await intake.enqueue(_request(), key=None)
        await submitter.submit_due()
        transactions.batches.advance(3600)
        counted = _ended_batches("completed")

        with pytest.raises(ConnectionResetError):
            await poller.poll_due()

        assert _results(transactions) == []
        assert _ended_batches("completed") == counted
        assert [b.state for b in _batches(transactions)] == ["submitted"]

    async def test_a_running_batch_is_checked_again_later_and_later(self) -> None:
        api = FakeBatchAPI()
        transactions, intake, submitter, poller = _wired(api)
        await intake.enqueue(_request(), key=None)
        await submitter.submit_due()

        intervals: list[float] = []
        for _ in range(3):
            transactions.batches.advance(3600)  # the next check is due
            await poller.poll_due()
            intervals.extend(b.poll_interval_seconds for b in _batches(transactions))
        assert intervals == [2.0, 3.0, 3.0]
        assert _results(transactions) == []

    async def test_a_failed_status_check_is_retried_without_answering(self) -> None:
        api = FakeBatchAPI(progress_error=ProviderServerError("503"))
        transactions, intake, submitter, poller = _wired(api)
        await intake.enqueue(_request(), key=None)
        await submitter.submit_due()

        transactions.batches.advance(3600)
        assert await poller.poll_due() == 1
        assert _results(transactions) == []
        assert [b.state for b in _batches(transactions)] == ["submitted"]

    async def test_a_request_a_completed_batch_did_not_answer_gets_a_retryable_error(
        self,
    ) -> None:
        api = FakeBatchAPI(running=False)
        transactions, intake, submitter, poller = _wired(api)
        await intake.enqueue(_request(), key=None)
        await submitter.submit_due()
        transactions.batches.advance(3600)

        await poller.poll_due()

        [result] = _results(transactions)
        assert result.error_detail is not None
        assert result.error_detail.code is ErrorCode.PROVIDER_ERROR
        assert result.error_detail.retryable
        assert [b.outcome for b in _batches(transactions)] == ["completed"]


LONG_RUBRIC = "Weigh the evidence, the structure and the language of each essay. " * 150


async def _queued_request(settings: Settings, **request: Any) -> QueuedRequest:
    transactions, intake, _, _ = _wired(FakeBatchAPI(), settings)
    envelope = comparison_envelope(
        "requests", "callbacks", provider=OPENAI, mode=LLMMode.BATCH, **request
    )
    await intake.enqueue(envelope, key=None)
    queued: QueuedRequest = next(iter(transactions.batches.items.values())).request
    return queued


class TestBatchItemsCarryTheCacheHints:
    async def test_a_batch_item_has_the_breakpoints_and_key_of_a_synchronous_call(self) -> None:
        settings = _settings()
        item = await _queued_request(settings, model="gpt-4o-mini", judge_rubric=LONG_RUBRIC)
        call = chat_request(item, settings)
        assert call.cache_key is not None
        assert call.cache_key.startswith("huleedu-")
        assert len(call.cache_breakpoints) == 2
        assert LONG_RUBRIC.strip() in call.user[: call.cache_breakpoints[0]]
        essay_a = call.user[call.cache_breakpoints[0] : call.cache_breakpoints[1]]
        assert DEVELOPED_ON_TOPIC in essay_a

    async def test_with_caching_off_a_batch_item_has_no_cache_hints(self) -> None:
        settings = _settings(llm_prompt_caching=False)
        item = await _queued_request(settings, model="gpt-4o-mini", judge_rubric=LONG_RUBRIC)
        call = chat_request(item, settings)
        assert call.cache_key is None
        assert call.cache_breakpoints == ()


class TestCacheFriendlyOrder:
    def test_calls_sharing_the_static_head_and_essay_a_become_adjacent(self) -> None:
        def call(custom_id: str, rubric: str, essay_a: str) -> BatchCall:
            envelope = comparison_envelope("requests", "callbacks", judge_rubric=rubric)
            request = envelope.data.model_copy(
                update={
                    "essay_a": envelope.data.essay_a.model_copy(update={"text_content": essay_a})
                }
            )
            prompt = prompt_call(request)
            chat = build_chat_request(
                prompt, model="m", temperature=None, max_tokens=10, cache_terms=None
            )
            return BatchCall(custom_id, chat)

        calls = [
            call("1", "rubric one", DEVELOPED_ON_TOPIC),
            call("2", "rubric two", DEVELOPED_ON_TOPIC),
            call("3", "rubric one", OFF_TOPIC_DEVELOPED),
            call("4", "rubric one", DEVELOPED_ON_TOPIC),
            call("5", "rubric two", ONE_LINE),
            call("6", "rubric one", OFF_TOPIC_DEVELOPED),
        ]
        ordered = [c.custom_id for c in cache_friendly_order(calls)]

        assert sorted(ordered) == [c.custom_id for c in calls]
        groups = [{"1", "4"}, {"3", "6"}]
        for group in groups:
            positions = sorted(ordered.index(i) for i in group)
            assert positions[1] - positions[0] == 1
        rubric_one = sorted(ordered.index(i) for i in ("1", "3", "4", "6"))
        assert rubric_one[-1] - rubric_one[0] == 3
        assert ordered.index("1") < ordered.index("4")  # stable within a group


class TestGroundedRubricInBatches:
    async def test_a_grounded_rubric_item_asks_for_citations_and_its_callback_keeps_them(
        self,
    ) -> None:
        settings = _settings()
        transactions, intake, _, _ = _wired(FakeBatchAPI(), settings)
        envelope = rubric_envelope("requests", "callbacks")
        request = envelope.data.model_copy(
            update={
                "llm_config": LLMConfig(provider=OPENAI, mode=LLMMode.BATCH),
                "reference_passages": [
                    ReferencePassage(passage_id="kp-1", text="Trams cut emissions."),
                    ReferencePassage(passage_id="kp-2", text="Parking fees fund buses."),
                ],
            }
        )
        await intake.enqueue(envelope.model_copy(update={"data": request}), key=None)
        item: QueuedRequest = next(iter(transactions.batches.items.values())).request

        assert chat_request(item, settings).schema_name == "grounded_rubric_scores"
        answer = {
            "scores": {"relevance": 4, "depth": 3, "clarity": 4, "technical": 3},
            "overall": 3.5,
            "feedback": "Relevant, could go deeper.",
            "citations": ["kp-2", "invented"],
        }
        outcome = ItemOutcome(str(item.request_id), ChatReply(json.dumps(answer), "gpt-4o-mini"))
        callback = BatchCallbacks(settings).callback(item, outcome).envelope
        assert callback.data.citations == ["kp-2"]
