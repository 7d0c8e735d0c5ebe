"""The service as real processes: a SIGKILL mid-batch, and two instances sharing one group."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cj_assessment_service.adapters.tables import cj_pairs
from cj_assessment_service.entrypoints.consumers import CALLBACK_GROUP, REQUEST_GROUP
from cj_assessment_service.testing.harness import outcome_events
from cj_assessment_service.testing.process import (
    get_json,
    group_members,
    metrics_text,
    process_env,
    service_process,
)
from cj_assessment_service.testing.requests import (
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentCompletedV1
from common_core.runtime.database import create_engine
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess
from common_core.topics import Topic

pytestmark = pytest.mark.integration


async def _batch_view(instance: ServiceProcess, entity_ref: str) -> Any:
    return await get_json(instance, f"/api/v1/batches?entity_ref={entity_ref}")


class TestCrashRecovery:
    async def test_sigkill_mid_batch_then_restart_completes_without_double_counting(
        self, database_url: str, kafka_bootstrap_servers: str, tmp_path: Path
    ) -> None:
        prefix = unique_prefix()
        settings = make_settings(database_url, kafka_bootstrap_servers, prefix)
        env = process_env(database_url, kafka_bootstrap_servers, prefix)
        async with (
            KafkaEventProducer(kafka_bootstrap_servers, client_id="test-judge") as producer,
            judging(settings, producer, policy=lambda _r, _i: None) as judge,
        ):
            async with service_process(env, tmp_path) as first:
                await producer.publish(
                    settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
                    request_envelope(settings, "crash", essays(10)),
                    key="crash",
                )
                await eventually(
                    lambda: asyncio.sleep(0, len(judge.requests)), until=lambda n: n == 45
                )
                for request in judge.requests[:20]:
                    await judge.answer(request, verdict(request.data))
                await eventually(
                    lambda: _batch_view(first, "crash"),
                    until=lambda b: b is not None and b["progress"]["completed"] == 20,
                )
                # Ten more in flight while the process dies without any clean-up.
                for request in judge.requests[20:30]:
                    await judge.answer(request, verdict(request.data))
                first.kill()
            # Every answer again, as a provider retrying after its own crash would.
            for request in judge.requests:
                await judge.answer(request, verdict(request.data))
            async with service_process(env, tmp_path) as second:
                view = await eventually(
                    lambda: _batch_view(second, "crash"),
                    until=lambda b: b is not None and b["state"] == "COMPLETED",
                    timeout=90,
                )
        events = await outcome_events(
            settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=1
        )
        engine = create_engine(database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                answered = await connection.scalar(
                    select(func.count())
                    .select_from(cj_pairs)
                    .where(cj_pairs.c.status == "COMPLETED")
                )
        finally:
            await engine.dispose()
        assert view["progress"]["completed"] == 45
        assert answered == 45
        assert len(events) == 1
        assert events[0].data.entity_ref == "crash"
        assert all(r.comparisons == 9 for r in events[0].data.rankings)


class TestScaleOut:
    async def test_two_instances_in_one_group_complete_a_batch_together(
        self, database_url: str, kafka_bootstrap_servers: str, tmp_path: Path
    ) -> None:
        prefix = unique_prefix()
        settings = make_settings(database_url, kafka_bootstrap_servers, prefix)
        env = process_env(database_url, kafka_bootstrap_servers, prefix)
        async with (
            KafkaEventProducer(kafka_bootstrap_servers, client_id="test-judge") as producer,
            service_process({**env, "INSTANCE_ID": "one"}, tmp_path) as one,
            service_process({**env, "INSTANCE_ID": "two"}, tmp_path) as two,
        ):
            for group in (REQUEST_GROUP, CALLBACK_GROUP):
                await eventually(
                    functools.partial(group_members, kafka_bootstrap_servers, group),
                    until=lambda n: n == 2,
                    timeout=60,
                    what=f"{group} has two members",
                )
            async with judging(settings, producer, key_by_request=True):
                refs = [f"shared-{i}" for i in range(3)]
                for ref in refs:
                    await producer.publish(
                        settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
                        request_envelope(settings, ref, essays(10)),
                        key=ref,
                    )
                for ref in refs:
                    view = await eventually(
                        functools.partial(_batch_view, one, ref),
                        until=lambda b: b is not None and b["state"] == "COMPLETED",
                        timeout=90,
                    )
                    assert view["progress"]["completed"] == 45
                    assert await _batch_view(two, ref) == view
            metrics = [await metrics_text(one), await metrics_text(two)]
        events = await outcome_events(
            settings, CJAssessmentCompletedV1, Topic.CJ_ASSESSMENT_COMPLETED, expected=3
        )
        assert sorted(e.data.entity_ref for e in events) == refs
        recorded = [
            _sample(text, 'huleedu_cj_callbacks_processed_total{outcome="recorded"}')
            for text in metrics
        ]
        assert all(count > 0 for count in recorded)
        assert sum(recorded) == 3 * 45


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
