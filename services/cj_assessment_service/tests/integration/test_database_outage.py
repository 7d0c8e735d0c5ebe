"""The database goes away while requests and answers arrive: nothing is dead-lettered, and
everything is handled once it is back (the consumers retry outages for as long as it takes)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    batch_in_state,
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
from common_core.events.cj import CJAssessmentCompletedV1
from common_core.testing import read_topic
from common_core.topics import Topic, dlq_topic_name
from devstack import free_port, start_postgres
from devstack.postgres import RunningPostgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_SECONDS = 20.0


@pytest.fixture
def own_postgres() -> Iterator[RunningPostgres]:
    """A PostgreSQL of this test's own (durable: a killed server must keep its commits)."""
    state_dir = Path(tempfile.mkdtemp(prefix="devstack-outage-"))
    state_dir.chmod(0o755)
    server = start_postgres(state_dir, free_port(), fast=False)
    try:
        yield server
    finally:
        # The test may have replaced the server by its restarted self: stop whatever runs there.
        RunningPostgres(
            pid=server.pid,
            port=server.port,
            data_dir=server.data_dir,
            bin_dir=server.bin_dir,
            log_path=server.log_path,
        ).stop()
        shutil.rmtree(state_dir, ignore_errors=True)


class TestDatabaseOutage:
    async def test_requests_and_answers_arriving_while_the_database_is_down_are_all_handled(
        self, own_postgres: RunningPostgres, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(own_postgres.url, kafka_bootstrap_servers, unique_prefix())
        refs = [f"during-outage-{i}" for i in range(3)]
        restarted: RunningPostgres | None = None
        try:
            async with (
                running_service(settings) as service,
                judging(settings, service.producer),
            ):
                # One batch is under way when the database dies: its answers arrive meanwhile.
                await submit(service, request_envelope(settings, "before-outage", essays(6)))
                await batch_in_state(service, "before-outage", BatchState.WAITING_CALLBACKS)
                own_postgres.kill()
                for ref in refs:
                    await submit(service, request_envelope(settings, ref, essays(4)))
                await asyncio.sleep(OUTAGE_SECONDS)
                restarted = own_postgres.restart()
                for ref in ["before-outage", *refs]:
                    await batch_in_state(service, ref, BatchState.COMPLETED, timeout=120)
                completed = await outcome_events(
                    settings,
                    CJAssessmentCompletedV1,
                    Topic.CJ_ASSESSMENT_COMPLETED,
                    expected=len(refs) + 1,
                )
        finally:
            if restarted is not None:
                restarted.stop()

        assert sorted(e.data.entity_ref for e in completed) == sorted(["before-outage", *refs])
        for topic in (settings.topic(Topic.CJ_ASSESSMENT_REQUESTED), settings.callback_topic):
            dead = await read_topic(
                kafka_bootstrap_servers, dlq_topic_name(topic), expected=1, timeout=3.0
            )
            assert dead == [], f"dead-lettered on {topic}"
