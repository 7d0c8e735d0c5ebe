"""The batch monitor: partial scoring after the grace period; recovering or failing stuck ones."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    CJRuntime,
    batch_in_state,
    newest_batch,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    Policy,
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJCompletionReason,
)
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration


def _answer_first(count: int) -> Policy:
    return lambda request, index: verdict(request) if index < count else None


async def _completed_count(service: CJRuntime, ref: str) -> int:
    batch = await newest_batch(service, ref)
    return batch.completed if batch else -1


class TestStuckBatches:
    async def test_stuck_batch_above_the_recovery_threshold_is_scored_by_forced_recovery(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            stuck_batch_timeout_seconds=2.0,
            recovery_threshold_pct=80.0,
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _answer_first(39)),
        ):
            await submit(service, request_envelope(settings, "stuck-85", essays(10)))
            await batch_in_state(service, "stuck-85", BatchState.COMPLETED)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
            batch = await newest_batch(service, "stuck-85")
        assert batch is not None
        assert (batch.completed, batch.planned) == (39, 45)  # 87 % answered
        assert batch.partial_scoring_triggered is False
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.FORCED_RECOVERY
        assert len(events[0].data.rankings) == 10

    async def test_stuck_batch_below_the_recovery_threshold_fails(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            stuck_batch_timeout_seconds=2.0,
            recovery_threshold_pct=80.0,
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _answer_first(20)),
        ):
            await submit(service, request_envelope(settings, "stuck-44", essays(10)))
            await batch_in_state(service, "stuck-44", BatchState.FAILED)
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=1
            )
            completed = await outcome_events(
                settings,
                CJAssessmentCompletedV1,
                Topic.CJ_ASSESSMENT_COMPLETED,
                expected=0,
                settle=0.5,
            )
        assert len(failed) == 1
        assert failed[0].data.error_detail.code == "stuck_batch"
        assert completed == []

    async def test_batch_stuck_in_scoring_is_recovered(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            stuck_batch_timeout_seconds=30.0,
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _answer_first(10)),
        ):
            await submit(service, request_envelope(settings, "stuck-scoring", essays(10)))
            await eventually(
                lambda: _completed_count(service, "stuck-scoring"), until=lambda c: c == 10
            )
            # As if an instance died while scoring, an hour ago.
            async with service.engine.begin() as connection:
                await connection.execute(
                    text(
                        "UPDATE cj_batches SET state = 'SCORING', "
                        "last_activity_at = now() - interval '1 hour' WHERE entity_ref = :ref"
                    ),
                    {"ref": "stuck-scoring"},
                )
            await batch_in_state(service, "stuck-scoring", BatchState.COMPLETED, timeout=30)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert len(events) == 1
        assert events[0].data.completion_reason == CJCompletionReason.FORCED_RECOVERY


class TestPartialScoring:
    async def test_completion_threshold_and_grace_trigger_partial_scoring(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            completion_threshold_pct=80.0,
            partial_scoring_grace_seconds=1.0,
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, _answer_first(37)),
        ):
            await submit(service, request_envelope(settings, "partial", essays(10)))
            await batch_in_state(service, "partial", BatchState.COMPLETED)
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
            batch = await newest_batch(service, "partial")
        assert batch is not None
        assert batch.partial_scoring_triggered is True
        assert batch.completed == 37
        assert len(events) == 1
        assert events[0].data.system_metadata.resource_usage.completed_comparisons == 37
