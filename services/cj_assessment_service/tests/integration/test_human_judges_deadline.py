"""A batch with human judges who judge nothing: their pairs are never asked of the AI, the batch
waits for them until the deadline, the monitor releases them, and the batch completes saying so
(real broker and database, the monitor running as in production)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    batch_in_state,
    newest_batch,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
)
from common_core.events.cj import CJAssessmentCompletedV1, HumanJudge, HumanJudgingRequest
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 15.0


async def test_unjudged_pairs_are_released_at_the_deadline_and_the_batch_completes(
    database_url: str, kafka_bootstrap_servers: str
) -> None:
    settings = make_settings(
        database_url, kafka_bootstrap_servers, unique_prefix(), monitor_interval_seconds=1.0
    )
    people = HumanJudgingRequest(
        judges=[HumanJudge(judge_id="t-absent", display_name="Absent Teacher")],
        share=0.2,
        deadline=datetime.now(UTC) + timedelta(seconds=DEADLINE_SECONDS),
    )
    async with running_service(settings) as service, judging(settings, service.producer) as judge:
        await submit(service, request_envelope(settings, "people", essays(8), human_judging=people))
        waiting = await eventually(
            lambda: newest_batch(service, "people"),
            until=lambda b: b is not None and b.completed == 28 and b.human_planned > 0,
            timeout=60.0,
            what="the AI's 28 answers and the people's pairs",
        )
        assert waiting is not None
        # Every AI answer is in and the batch is not finished: it waits for its people.
        assert waiting.state == BatchState.WAITING_CALLBACKS
        assert datetime.now(UTC) < people.deadline
        batch = await batch_in_state(service, "people", BatchState.COMPLETED, timeout=90)
        (completed,) = await outcome_events(
            settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
        )
    assert batch.finished_at is not None
    assert batch.finished_at >= people.deadline
    assert len(judge.requests) == 28  # the people's pairs never went to the AI
    assert (batch.human_planned, batch.human_released) == (waiting.human_planned,) * 2
    assert batch.planned == 28
    report = completed.data.statistics.human_judging
    assert report is not None
    assert (report.assigned, report.judged, report.released) == (7, 0, 7)  # 20 % of 35
    assert report.agreement is None
    assert completed.data.completion_detail is not None
    assert "7 of 7 comparisons given to human judges" in completed.data.completion_detail
    assert [r.essay_id for r in completed.data.rankings][:3] == ["e7", "e6", "e5"]
