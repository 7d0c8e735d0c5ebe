"""Outages seen from outside the CJ service process: its PostgreSQL or its Kafka broker is killed
with SIGKILL and restarted on its data directory.

While the database is down the HTTP API answers 503 (never 500) and recovers without a 500; the
process writes only JSON lines, no traceback, and a repeated connection error is written once
per interval with a count instead of once per attempt. Each test runs its own server of the
kind it kills (devstack on a temporary dir): killing the session's would break other tests.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cj_assessment_service.testing.process import process_env, service_process
from cj_assessment_service.testing.requests import (
    essays,
    make_settings,
    request_envelope,
    unique_prefix,
)
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess
from common_core.topics import Topic
from devstack import free_port, restart_kafka, start_kafka, start_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY = "/healthz/ready"
BROKER_OUTAGE_SECONDS = 15.0
REPEAT_INTERVAL_SECONDS = 10.0


@pytest.fixture
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="devstack-outage-"))
    path.chmod(0o755)  # the postgres account must reach its data dir inside
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Poll:
    """One client asking for `path` again and again; what it got, by the time it asked."""

    path: str
    timeout: float
    answers: list[tuple[float, int]] = field(default_factory=list)
    gave_up: int = 0
    unavailable: httpx.Response | None = None

    def statuses(self, *, sent_after: float = 0.0, sent_before: float = math.inf) -> list[int]:
        return [s for at, s in self.answers if sent_after <= at < sent_before]


async def _keep_polling(base_url: str, poll: Poll, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=poll.timeout) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                response = await client.get(poll.path)
            except httpx.TimeoutException:
                # An impatient client hangs up mid-request: the server cancels the handler.
                poll.gave_up += 1
            else:
                poll.answers.append((sent, response.status_code))
                if response.status_code == 503 and poll.unavailable is None:
                    poll.unavailable = response
            await asyncio.sleep(0.02)


async def _has_answers(polls: list[Poll], until: Any) -> bool:
    return all(until(p) for p in polls)


def _no_tracebacks(service: ServiceProcess) -> list[dict[str, Any]]:
    records = service.log_records()  # fails on the first line that is not a JSON object
    text = service.log_path.read_text()
    assert "Traceback" not in text
    assert "Error in ASGI Framework" not in text
    return records


class TestDatabaseOutage:
    async def test_http_api_answers_503_while_postgres_is_down_and_recovers_without_500s(
        self, state_dir: Path, kafka_bootstrap_servers: str, tmp_path: Path
    ) -> None:
        postgres = start_postgres(state_dir, free_port())
        prefix, ref = unique_prefix(), f"outage-{uuid.uuid4().hex[:8]}"
        batch = f"/api/v1/batches?entity_ref={ref}"
        try:
            async with (
                KafkaEventProducer(kafka_bootstrap_servers, client_id="outage-test") as producer,
                service_process(
                    process_env(postgres.url, kafka_bootstrap_servers, prefix), tmp_path
                ) as cj,
            ):
                settings = make_settings(postgres.url, kafka_bootstrap_servers, prefix)
                await producer.publish(
                    settings.topic(Topic.CJ_ASSESSMENT_REQUESTED),
                    request_envelope(settings, ref, essays(4)),
                    key=ref,
                )
                await _wait_for_status(cj, batch, 200)

                patient = [Poll(batch, 10.0) for _ in range(3)]
                ready = Poll(READY, 10.0)
                impatient = Poll(batch, 0.05)
                polls = [*patient, ready, impatient]
                stop = asyncio.Event()
                pollers = [asyncio.create_task(_keep_polling(cj.url, p, stop)) for p in polls]
                try:
                    await eventually(
                        lambda: _has_answers([*patient, ready], lambda p: len(p.answers) >= 5),
                        what="answers before the outage",
                    )
                    killed_at = time.monotonic()
                    await asyncio.to_thread(postgres.kill)
                    await eventually(
                        lambda: _has_answers(
                            [*patient, ready],
                            lambda p: p.statuses(sent_after=killed_at).count(503) >= 10,
                        ),
                        what="503 answers during the outage",
                    )
                    postgres = await asyncio.to_thread(postgres.restart)
                    restarted_at = time.monotonic()
                    await eventually(
                        lambda: _has_answers(
                            [*patient, ready],
                            lambda p: 200 in p.statuses(sent_after=restarted_at),
                        ),
                        timeout=60.0,
                        what="200 answers after the restart",
                    )
                    recovered_at = max(
                        next(at for at, s in p.answers if at >= restarted_at and s == 200)
                        for p in patient
                    )
                    await eventually(
                        lambda: _has_answers(
                            patient, lambda p: len(p.statuses(sent_after=recovered_at)) >= 30
                        ),
                        what="answers after the recovery",
                    )
                finally:
                    stop.set()
                    await asyncio.gather(*pollers)
            records = _no_tracebacks(cj)
        finally:
            postgres.stop()

        for poll in polls:
            assert set(poll.statuses()) <= {200, 503}, poll.path
        for poll in [*patient, ready]:
            assert poll.gave_up == 0
            assert 503 in poll.statuses(sent_after=killed_at, sent_before=restarted_at)
            assert poll.unavailable is not None
            assert poll.unavailable.headers["Retry-After"].isdigit()
        assert patient[0].unavailable is not None
        assert patient[0].unavailable.json()["code"] == "service_unavailable"
        for poll in patient:
            assert set(poll.statuses(sent_after=recovered_at)) == {200}
        events = Counter(record["event"] for record in records)
        assert events["database_unavailable"] >= 1
        assert events["request_failed"] == 0


class TestBrokerOutage:
    async def test_broker_outage_writes_a_few_json_lines_not_one_per_attempt(
        self, state_dir: Path, database_url: str, tmp_path: Path
    ) -> None:
        broker = start_kafka(state_dir, free_port(), die_with_parent=True)
        env = process_env(
            database_url,
            broker.address,
            unique_prefix(),
            LOG_REPEAT_INTERVAL_SECONDS=str(REPEAT_INTERVAL_SECONDS),
        )
        try:
            async with service_process(env, tmp_path) as cj:
                await _wait_for_status(cj, READY, 200)
                killed_at = time.monotonic()
                broker.kill()
                await asyncio.sleep(BROKER_OUTAGE_SECONDS)  # the outage, not a wait for a result
                broker = restart_kafka(state_dir, die_with_parent=True)
                await _wait_for_status(cj, READY, 200)
            outage_and_after = time.monotonic() - killed_at
            records = _no_tracebacks(cj)
        finally:
            broker.stop()

        client_lines = [r for r in records if r["logger"].startswith("aiokafka")]
        assert client_lines, "the client said nothing about a broker it lost"
        # One line per interval per message (plus the first one, plus the count at exit).
        most_per_message = math.ceil(outage_and_after / REPEAT_INTERVAL_SECONDS) + 2
        per_message = Counter((r["logger"], r["level"], r["event"]) for r in client_lines)
        assert max(per_message.values()) <= most_per_message, per_message
        assert any(r.get("repeats", 0) > 1 for r in client_lines), "no repeat was collapsed"


async def _wait_for_status(service: ServiceProcess, path: str, status: int) -> None:
    async def answer() -> int:
        async with httpx.AsyncClient(timeout=5.0) as client:
            try:
                return (await client.get(f"{service.url}{path}")).status_code
            except httpx.HTTPError:
                return 0

    await eventually(answer, until=lambda s: s == status, timeout=90.0, what=f"{path} {status}")
