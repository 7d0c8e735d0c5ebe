"""The HTTP API: health, batch status, results and cancel, against the real database."""

from __future__ import annotations

import uuid

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
    ScriptedJudge,
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentCompletedV1, CJAssessmentFailedV1
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration


class TestOperationalRoutes:
    async def test_health_readiness_and_metrics(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            client = service.app.test_client()
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/healthz/ready")
            assert ready.status_code == 200
            assert (await ready.get_json())["checks"] == {"database": "ok", "kafka": "ok"}
            metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert "huleedu_cj_callbacks_processed_total" in metrics
        assert "huleedu_cj_orphan_callbacks_total" in metrics


class TestBatchApi:
    async def test_status_results_and_lookup_by_entity_ref(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            client = service.app.test_client()
            async with judging(settings, service.producer, policy=lambda _r, _i: None) as judge:
                request = request_envelope(settings, "http-ref", essays(4))
                await submit(service, request)
                batch = await eventually(
                    lambda: newest_batch(service, "http-ref"), until=lambda b: b is not None
                )
                assert batch is not None
                waiting = await client.get(f"/api/v1/batches/{batch.id}/results")
                assert waiting.status_code == 409
                assert (await waiting.get_json())["code"] == "batch_not_completed"
                await eventually(lambda: _count(judge), until=lambda n: n == 6)
                for item in judge.requests:
                    await judge.answer(item, verdict(item.data))
                await batch_in_state(service, "http-ref", BatchState.COMPLETED, timeout=30)
            status = await client.get(f"/api/v1/batches/{batch.id}")
            body = await status.get_json()
            found = await (await client.get("/api/v1/batches?entity_ref=http-ref")).get_json()
            results = await client.get(f"/api/v1/batches/{batch.id}/results")
            result_body = await results.get_json()
            events = await outcome_events(
                settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
            )
        assert status.status_code == 200
        assert body["state"] == "COMPLETED"
        assert body["correlation_id"] == str(request.correlation_id)
        assert body["completion_reason"] == "ALL_PAIRS_COMPARED"
        assert body["partial_scoring_triggered"] is False
        assert body["progress"] == {
            "essays": 4,
            "budget": 6,
            "planned": 6,
            "completed": 6,
            "failed": 0,
            "pending": 0,
            "percent_complete": 100.0,
        }
        assert found == body
        assert results.status_code == 200
        event = events[0].data.model_dump(mode="json")
        for key in ("rankings", "statistics", "grade_projections"):
            assert result_body[key] == event[key]

    async def test_cancel_publishes_one_failed_event_and_cannot_be_repeated(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            client = service.app.test_client()
            await submit(service, request_envelope(settings, "to-cancel", essays(5)))
            batch = await eventually(
                lambda: newest_batch(service, "to-cancel"), until=lambda b: b is not None
            )
            assert batch is not None
            cancelled = await client.post(f"/api/v1/batches/{batch.id}/cancel")
            again = await client.post(f"/api/v1/batches/{batch.id}/cancel")
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=1
            )
        assert cancelled.status_code == 200
        assert (await cancelled.get_json())["state"] == "CANCELLED"
        assert again.status_code == 409
        assert (await again.get_json())["code"] == "batch_already_finished"
        assert len(failed) == 1
        assert failed[0].data.error_detail.code == "cancelled"

    async def test_errors_are_json_with_a_code(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            client = service.app.test_client()
            bad = await client.get("/api/v1/batches/not-a-uuid")
            missing = await client.get(f"/api/v1/batches/{uuid.uuid4()}")
            no_ref = await client.get("/api/v1/batches")
            unknown_ref = await client.get("/api/v1/batches?entity_ref=nobody")
            cancel_missing = await client.post(f"/api/v1/batches/{uuid.uuid4()}/cancel")
            no_route = await client.get("/api/v1/nothing")
        assert bad.status_code == 400
        assert await bad.get_json() == {
            "code": "invalid_parameter",
            "message": "'not-a-uuid' is not a UUID",
            "field": "batch_id",
        }
        assert missing.status_code == 404
        assert (await missing.get_json())["code"] == "batch_not_found"
        assert no_ref.status_code == 400
        assert (await no_ref.get_json())["field"] == "entity_ref"
        assert unknown_ref.status_code == 404
        assert cancel_missing.status_code == 404
        assert no_route.status_code == 404
        assert (await no_route.get_json())["code"] == "not_found"


async def _count(judge: ScriptedJudge) -> int:
    return len(judge.requests)
