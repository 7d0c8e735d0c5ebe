"""The human judges' use cases through an in-memory unit of work: what a judge may still answer
and when, the page's states, and the organiser's invitation and links."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cj_assessment_service.application.human_judging import HumanJudgingUseCases, PageState
from cj_assessment_service.application.ports import EssayRecord, HumanPairRecord
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.domain.errors import (
    BatchAlreadyFinished,
    HumanJudgingConflict,
    HumanJudgingNotConfigured,
    InvalidDeadline,
    JudgeNotInvited,
    PairReleased,
)
from cj_assessment_service.domain.judge_links import JudgeLinkClaims, verify_judge_link
from cj_assessment_service.testing.fakes import FakeUnitOfWork
from cj_assessment_service.testing.human_judges import JUDGE_LINK_SECRET
from cj_assessment_service.testing.requests import batch_record
from common_core.events.cj import HumanJudge, HumanJudgingRequest
from common_core.events.llm import ComparisonWinner

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DEADLINE = NOW + timedelta(hours=1)
SETTINGS = Settings(judge_link_secret=JUDGE_LINK_SECRET, judge_page_base_url="https://cj.example/")


def _request(deadline: datetime = DEADLINE) -> HumanJudgingRequest:
    return HumanJudgingRequest(
        judges=[HumanJudge(judge_id="t1", display_name="Ms Lind")], share=0.1, deadline=deadline
    )


def _seeded(uow: FakeUnitOfWork, *statuses: PairStatus) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A live batch with human judging and one pair of judge t1 per status given."""
    batch = batch_record(human_judging=_request(), human_deadline=DEADLINE)
    uow.batches.rows[batch.id] = batch
    uow.essays.rows[batch.id] = [EssayRecord(i, f"e{i}", f"text {i}") for i in range(3)]
    ids = []
    for index, status in enumerate(statuses):
        pair = HumanPairRecord(
            uuid.uuid4(), batch.id, "t1", 0, 1 + index % 2, uuid.uuid4(), status,
            NOW, submitted_at=None, skipped_at=None,
        )  # fmt: skip
        uow.human_judging.assign(pair)
        ids.append(pair.id)
    return batch.id, ids


def _claims(batch_id: uuid.UUID) -> JudgeLinkClaims:
    return JudgeLinkClaims(batch_id, "t1", DEADLINE)


class TestWhatAJudgeMayAnswer:
    async def test_a_released_pair_or_a_finished_batch_is_closed(self) -> None:
        uow = FakeUnitOfWork()
        batch_id, (released, pending) = _seeded(uow, PairStatus.RELEASED, PairStatus.PENDING)
        use_cases = HumanJudgingUseCases(SETTINGS, clock=lambda: NOW)
        with pytest.raises(PairReleased):
            await use_cases.submit(uow, _claims(batch_id), released, ComparisonWinner.ESSAY_A)
        batch = uow.batches.rows[batch_id]
        uow.batches.rows[batch_id] = replace(batch, state=BatchState.COMPLETED)
        with pytest.raises(PairReleased):
            await use_cases.skip(uow, _claims(batch_id), pending)
        assert uow.outbox == []

    async def test_after_the_deadline_nothing_is_taken(self) -> None:
        uow = FakeUnitOfWork()
        batch_id, (pending,) = _seeded(uow, PairStatus.PENDING)
        late = HumanJudgingUseCases(SETTINGS, clock=lambda: DEADLINE)
        with pytest.raises(PairReleased):
            await late.submit(uow, _claims(batch_id), pending, ComparisonWinner.ESSAY_B)
        page = await late.next_for_judge(uow, _claims(batch_id))
        assert page.state == PageState.DEADLINE_PASSED
        assert uow.outbox == []

    async def test_a_judge_the_batch_did_not_invite_is_refused(self) -> None:
        uow = FakeUnitOfWork()
        batch_id, _ = _seeded(uow, PairStatus.PENDING)
        use_cases = HumanJudgingUseCases(SETTINGS, clock=lambda: NOW)
        with pytest.raises(JudgeNotInvited):
            await use_cases.next_for_judge(uow, JudgeLinkClaims(batch_id, "t9", DEADLINE))


class TestThePage:
    async def test_progress_counts_judged_and_released_pairs(self) -> None:
        uow = FakeUnitOfWork()
        batch_id, _ = _seeded(uow, PairStatus.COMPLETED, PairStatus.RELEASED, PairStatus.PENDING)
        page = await HumanJudgingUseCases(SETTINGS, clock=lambda: NOW).next_for_judge(
            uow, _claims(batch_id)
        )
        assert page.state == PageState.PAIR
        assert (page.progress.judged, page.progress.assigned) == (1, 3)
        assert page.pair is not None
        assert (page.pair.essay_a_text, page.pair.essay_b_text) == ("text 0", "text 1")

    async def test_no_pair_yet_is_waiting_and_none_left_is_done(self) -> None:
        uow = FakeUnitOfWork()
        unplanned, _ = _seeded(uow)
        judged, _ = _seeded(uow, PairStatus.COMPLETED)
        use_cases = HumanJudgingUseCases(SETTINGS, clock=lambda: NOW)
        waiting = await use_cases.next_for_judge(uow, _claims(unplanned))
        done = await use_cases.next_for_judge(uow, _claims(judged))
        assert (waiting.state, done.state) == (PageState.WAITING, PageState.DONE)


class TestTheOrganiser:
    async def test_invite_stores_the_request_and_signs_links_until_the_deadline(self) -> None:
        uow = FakeUnitOfWork()
        batch = batch_record()
        uow.batches.rows[batch.id] = batch
        use_cases = HumanJudgingUseCases(SETTINGS, clock=lambda: NOW)
        (link,) = await use_cases.start_human_judging(uow, batch.id, _request())
        assert uow.batches.rows[batch.id].human_deadline == DEADLINE
        assert link.link.startswith("https://cj.example/judge/")
        token = link.link.rsplit("/", 1)[1]
        claims = verify_judge_link(token, JUDGE_LINK_SECRET.encode(), NOW)
        assert claims == JudgeLinkClaims(batch.id, "t1", DEADLINE)
        with pytest.raises(HumanJudgingConflict):
            await use_cases.start_human_judging(uow, batch.id, _request())

    async def test_a_finished_batch_or_a_past_deadline_is_refused(self) -> None:
        uow = FakeUnitOfWork()
        finished = batch_record(state=BatchState.CANCELLED)
        live = batch_record()
        uow.batches.rows.update({finished.id: finished, live.id: live})
        use_cases = HumanJudgingUseCases(SETTINGS, clock=lambda: NOW)
        with pytest.raises(BatchAlreadyFinished):
            await use_cases.start_human_judging(uow, finished.id, _request())
        with pytest.raises(InvalidDeadline):
            await use_cases.start_human_judging(uow, live.id, _request(NOW))

    async def test_without_a_secret_nothing_is_signed(self) -> None:
        uow = FakeUnitOfWork()
        batch = batch_record()
        uow.batches.rows[batch.id] = batch
        with pytest.raises(HumanJudgingNotConfigured):
            await HumanJudgingUseCases(Settings()).start_human_judging(uow, batch.id, _request())
        assert uow.batches.rows[batch.id].human_judging is None
