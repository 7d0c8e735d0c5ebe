"""The retention purge and the erasure of a batch, driven through the in-memory unit of work."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cj_assessment_service.application.data_lifecycle import ERASED_KINDS, purge_expired_texts
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import BatchNotFound
from cj_assessment_service.testing.fakes import FakeUnitOfWork
from cj_assessment_service.testing.requests import essays, request_envelope, verdict
from common_core.events.llm import LLMComparisonRequestV1
from common_core.topics import Topic

REQUESTED = Topic.LLM_COMPARISON_REQUESTED.value
FAILED = Topic.CJ_ASSESSMENT_FAILED.value


async def _running(uow: FakeUnitOfWork, n: int = 4) -> CJWorkflow:
    settings = Settings()
    flow = CJWorkflow(settings, seed=1)
    await flow.handle_request(uow, request_envelope(settings, "ref", essays(n)))
    return flow


def _texts(uow: FakeUnitOfWork) -> list[str]:
    return [e.text_content for rows in uow.essays.rows.values() for e in rows]


class TestErasure:
    async def test_a_live_batch_is_cancelled_and_its_texts_and_requests_are_gone(self) -> None:
        uow = FakeUnitOfWork()
        flow = await _running(uow)
        (batch,) = uow.batches.rows.values()
        asked = len(uow.events(REQUESTED))
        report = await flow.erase(uow, batch.id, requested_by="ops")
        erased = uow.batches.rows[batch.id]
        assert erased.state == BatchState.CANCELLED
        assert erased.texts_purged_at is not None
        assert set(_texts(uow)) == {""}
        assert uow.events(REQUESTED) == []
        assert [e.data.error_detail.code for e in uow.events(FAILED)] == ["cancelled"]
        assert dict(report.erased) == {
            "essay_texts": 4,
            "outbox_requests": asked,
            "essay_sets": 0,
            "essay_set_texts": 0,
            "batches_cancelled": 1,
        }
        assert report.already_erased is False
        (record,) = uow.lifecycle.erasures
        assert (record.id, record.requested_by, record.batch_state) == (
            report.audit_id,
            "ops",
            BatchState.WAITING_CALLBACKS,
        )

    async def test_a_repeat_erases_nothing_and_says_so_and_is_audited_again(self) -> None:
        uow = FakeUnitOfWork()
        flow = await _running(uow)
        (batch,) = uow.batches.rows.values()
        first = await flow.erase(uow, batch.id, requested_by=None)
        second = await flow.erase(uow, batch.id, requested_by=None)
        assert second.already_erased is True
        assert dict(second.erased) == dict.fromkeys(ERASED_KINDS, 0)
        assert [r.id for r in uow.lifecycle.erasures] == [first.audit_id, second.audit_id]
        assert len(uow.events(FAILED)) == 1

    async def test_answers_arriving_after_an_erasure_change_nothing(self) -> None:
        uow = FakeUnitOfWork()
        flow = await _running(uow)
        (batch,) = uow.batches.rows.values()
        asked: list[LLMComparisonRequestV1] = [e.data for e in uow.events(REQUESTED)]
        await flow.erase(uow, batch.id, requested_by=None)
        report = await flow.record_results(uow, [verdict(r) for r in asked])
        assert report.late == len(asked)
        assert uow.batches.rows[batch.id].completed == 0
        assert set(_texts(uow)) == {""}
        assert uow.events(REQUESTED) == []

    async def test_an_unknown_batch_is_not_found(self) -> None:
        uow = FakeUnitOfWork()
        flow = await _running(uow)
        with pytest.raises(BatchNotFound):
            await flow.erase(uow, uuid4(), requested_by=None)
        assert uow.lifecycle.erasures == []


class TestRetentionPurge:
    async def test_only_batches_finished_before_the_cutoff_lose_their_texts(self) -> None:
        uow = FakeUnitOfWork()
        await _running(uow)
        (live,) = uow.batches.rows.values()
        now = datetime.now(UTC)
        finished = replace(
            live, id=uuid4(), state=BatchState.COMPLETED, finished_at=now - timedelta(days=8)
        )
        await uow.batches.add(finished)
        await uow.essays.add(finished.id, await uow.essays.get(live.id))
        report = await purge_expired_texts(
            uow.lifecycle, finished_before=now - timedelta(days=7), limit=10, at=now
        )
        assert (report.batches, report.texts) == (1, 4)
        assert {e.text_content for e in await uow.essays.get(finished.id)} == {""}
        assert "" not in {e.text_content for e in await uow.essays.get(live.id)}
        again = await purge_expired_texts(uow.lifecycle, finished_before=now, limit=10, at=now)
        assert (again.batches, again.texts) == (0, 0)
