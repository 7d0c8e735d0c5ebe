from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from common_core.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EssayToProcess,
    EventEnvelope,
    LLMProviderName,
)
from huleedu_cli.cj_batch import build_cj_request, follow_cj_batch, request_envelope
from huleedu_cli.errors import (
    EXIT_BATCH_FAILED,
    EXIT_TIMEOUT,
    CJBatchFailedError,
    CJBatchTimeoutError,
    StatusUnavailableError,
)
from huleedu_cli.status_client import BatchProgress, BatchStatus
from huleedu_cli.tests.factories import completed_event, failed_event

ESSAYS = [EssayToProcess(essay_id=f"e{i}", text_content=f"Essay {i}.") for i in range(1, 5)]


class FakeChannel:
    """Answers a published request with a scripted outcome (or never, if none is given)."""

    def __init__(self, outcome: CJAssessmentCompletedV1 | CJAssessmentFailedV1 | None) -> None:
        self.published: list[EventEnvelope[CJAssessmentRequestV1]] = []
        self._outcome = outcome
        self._answered = asyncio.Event()

    async def publish_request(self, envelope: EventEnvelope[CJAssessmentRequestV1]) -> None:
        self.published.append(envelope)
        if self._outcome is not None:
            self._answered.set()

    async def wait_for_outcome(
        self, entity_ref: str
    ) -> CJAssessmentCompletedV1 | CJAssessmentFailedV1:
        await self._answered.wait()
        assert self._outcome is not None
        return self._outcome


class FakeStatusSource:
    """Serves a fixed series of answers, then repeats the last one."""

    def __init__(self, answers: list[BatchStatus | StatusUnavailableError | None]) -> None:
        self._answers: Iterator[BatchStatus | StatusUnavailableError | None] = iter(answers)
        self._last: BatchStatus | StatusUnavailableError | None = None

    async def batch_for_entity(self, entity_ref: str) -> BatchStatus | None:
        self._last = next(self._answers, self._last)
        if isinstance(self._last, StatusUnavailableError):
            raise self._last
        return self._last


class GatedChannel(FakeChannel):
    """Answers only after the test has seen enough progress reports."""

    def __init__(self, outcome: CJAssessmentCompletedV1, gate: asyncio.Event) -> None:
        super().__init__(outcome)
        self._gate = gate

    async def wait_for_outcome(
        self, entity_ref: str
    ) -> CJAssessmentCompletedV1 | CJAssessmentFailedV1:
        await self._gate.wait()
        return await super().wait_for_outcome(entity_ref)


def request(entity_ref: str = "batch-1") -> CJAssessmentRequestV1:
    return build_cj_request(ESSAYS, entity_ref=entity_ref, essay_instructions="Discuss.")


class TestBuildRequest:
    def test_no_provider_or_model_means_no_overrides(self) -> None:
        assert request().llm_config_overrides is None

    def test_provider_model_budget_and_rubric_are_carried(self) -> None:
        built = build_cj_request(
            ESSAYS,
            entity_ref="b",
            judge_rubric="Depth first.",
            provider=LLMProviderName.HEURISTIC,
            model="features-v1",
            max_comparisons=12,
        )
        assert built.llm_config_overrides is not None
        assert built.llm_config_overrides.provider is LLMProviderName.HEURISTIC
        assert built.llm_config_overrides.model == "features-v1"
        assert (built.max_comparisons, built.judge_rubric) == (12, "Depth first.")

    def test_each_envelope_gets_a_fresh_correlation_id_and_the_prefixed_topic(self) -> None:
        first = request_envelope(request(), topic_prefix="demo")
        second = request_envelope(request(), topic_prefix="demo")
        assert first.correlation_id != second.correlation_id
        assert first.event_type == "demo.els.cj_assessment.requested.v1"
        assert first.source_service == "huleedu_cli"


class TestFollowBatch:
    async def test_completed_event_is_returned_after_the_request_is_published(self) -> None:
        completed = completed_event("batch-1")
        channel = FakeChannel(completed)
        envelope = request_envelope(request("batch-1"))

        result = await follow_cj_batch(envelope, channel=channel)

        assert result == completed
        assert channel.published == [envelope]

    async def test_failed_event_raises_with_its_error_detail(self) -> None:
        channel = FakeChannel(failed_event("batch-1"))

        with pytest.raises(CJBatchFailedError) as raised:
            await follow_cj_batch(request_envelope(request()), channel=channel)

        assert raised.value.exit_code == EXIT_BATCH_FAILED
        assert raised.value.failed.error_detail.message == "duplicate essay_id e1"
        assert "duplicate essay_id e1" in raised.value.message

    async def test_no_outcome_within_the_timeout_raises(self) -> None:
        with pytest.raises(CJBatchTimeoutError) as raised:
            await follow_cj_batch(
                request_envelope(request()), channel=FakeChannel(None), timeout=0.2
            )
        assert raised.value.exit_code == EXIT_TIMEOUT

    async def test_progress_is_reported_and_an_unreachable_status_api_reads_as_unknown(
        self,
    ) -> None:
        running = BatchStatus(
            batch_id="7",
            entity_ref="batch-1",
            state="WAITING_CALLBACKS",
            progress=BatchProgress(essays=4, budget=6, planned=6, completed=3, percent_complete=50),
        )
        source = FakeStatusSource([StatusUnavailableError("down"), None, running])
        gate = asyncio.Event()
        seen: list[BatchStatus | None] = []

        def on_progress(status: BatchStatus | None) -> None:
            seen.append(status)
            if status is not None:
                gate.set()

        await follow_cj_batch(
            request_envelope(request("batch-1")),
            channel=GatedChannel(completed_event("batch-1"), gate),
            status_source=source,
            on_progress=on_progress,
            poll_interval=0.01,
        )

        assert seen[:3] == [None, None, running]
