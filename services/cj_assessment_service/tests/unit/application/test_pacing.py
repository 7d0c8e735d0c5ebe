"""The per-batch memory that paces checks and top-ups by their measured cost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from cj_assessment_service.application.pacing import MAX_REMEMBERED_BATCHES, BatchPacing
from cj_assessment_service.application.ports import BatchRecord
from cj_assessment_service.testing.requests import batch_record

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _batch(*, completed: int, age_seconds: float) -> BatchRecord:
    return batch_record(
        essay_count=10_000,
        budget=100_000,
        planned=completed + 500,
        completed=completed,
        created_at=NOW - timedelta(seconds=age_seconds),
    )


def _pacing() -> BatchPacing:
    return BatchPacing(min_refill_step=8, min_outstanding=48, check_share=0.1, planning_share=0.2)


class TestChecks:
    def test_a_batch_not_checked_yet_waits_the_minimum(self) -> None:
        pacing = _pacing()
        batch = _batch(completed=40_000, age_seconds=100)  # 400 answers a second
        assert pacing.last_checked(batch.id) is None
        assert pacing.check_step(batch, NOW, minimum=2500) == 2500

    def test_a_costly_check_waits_for_more_answers(self) -> None:
        pacing = _pacing()
        batch = _batch(completed=40_000, age_seconds=100)
        pacing.record_check(batch.id, 40_000, seconds=2.0)
        # 400 answers/s x 2 s / 10 % = 8,000 answers (20 s) between checks.
        assert pacing.check_step(batch, NOW, minimum=2500) == 8000
        assert pacing.last_checked(batch.id) == 40_000

    def test_a_finished_batch_is_forgotten(self) -> None:
        pacing = _pacing()
        batch = _batch(completed=40_000, age_seconds=100)
        pacing.record_check(batch.id, 40_000, seconds=2.0)
        pacing.forget(batch.id)
        assert pacing.last_checked(batch.id) is None


class TestPlanning:
    def test_a_costly_top_up_plans_more_at_a_time(self) -> None:
        pacing = _pacing()
        batch = _batch(completed=40_000, age_seconds=100)
        pacing.record_planning(batch.id, seconds=0.25)
        pace = pacing.planning(batch, NOW)
        # 400 answers/s x 0.25 s / 20 % = 500 answers between top-ups, two of them in flight.
        assert (pace.refill_step, pace.target_outstanding) == (500, 1000)

    def test_memory_is_bounded(self) -> None:
        pacing = _pacing()
        first = _batch(completed=10, age_seconds=10)
        pacing.record_check(first.id, 10, seconds=1.0)
        for _ in range(MAX_REMEMBERED_BATCHES):
            pacing.record_planning(uuid.uuid4(), seconds=0.1)
        assert pacing.last_checked(first.id) is None
