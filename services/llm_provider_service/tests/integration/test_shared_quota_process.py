"""Two service processes in one consumer group share one provider token budget through their
PostgreSQL: with a quota one instance alone would use up, together they never grant more than the
quota in any window of one period, and every request is answered without error.

The grants are read from the database (a trigger the test adds copies each one, with the
database's clock), not from when calls reach the stand-in provider: the delay between a grant and
its call arriving is unbounded on a loaded machine, so arrival times cannot show the property."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from common_core.events.envelope import decode_event
from common_core.events.llm import LLMComparisonResultV1, LLMProviderName
from common_core.runtime.database import asyncpg_dsn
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import read_topic
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from llm_provider_service.application.judging import comparison_prompt
from llm_provider_service.testing.fake_llm_server import FakeLLMServer
from llm_provider_service.testing.fake_quota import TokenQuota
from llm_provider_service.testing.requests import comparison_envelope

pytestmark = pytest.mark.integration

PROVIDER_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LLM_")
PERIOD = 8.0
# The stand-in provider enforces the quota over half the period (arrival times are late by an
# unbounded delay); a 429 it answers is retried by the service, so results stay clean either way.
FAKE_WINDOW = PERIOD / 2
ANSWER_BUDGET = 200
REQUESTS_PER_PERIOD = 4
REQUESTS = 16


@pytest.fixture
async def service_database(postgres_server_url: str) -> AsyncIterator[str]:
    name = f"llmq_{uuid.uuid4().hex}"
    yield make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await connection.close()


async def test_two_instances_never_exceed_the_shared_token_quota(
    kafka_bootstrap_servers: str, service_database: str, tmp_path: Path
) -> None:
    prefix = f"llmquota{uuid.uuid4().hex[:10]}"
    requests_topic = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
    callbacks = f"{prefix}.cj.callbacks"
    envelopes = [
        comparison_envelope(requests_topic, callbacks, provider=LLMProviderName.OPENAI)
        for _ in range(REQUESTS)
    ]
    prompt = comparison_prompt(envelopes[0].data)
    per_request = (len(prompt.system) + len(prompt.user)) // 4 + ANSWER_BUDGET
    quota = TokenQuota(per_request * REQUESTS_PER_PERIOD, FAKE_WINDOW)
    async with FakeLLMServer(script=quota) as fake:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
            "DATABASE_URL": service_database,
            "TOPIC_PREFIX": prefix,
            "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
            "LOG_LEVEL": "WARNING",
            "LLM_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "LLM_SHUTDOWN_GRACE_SECONDS": "3",
            "OPENAI_API_KEY": "sk-test-quota",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_TOKENS_PER_MINUTE": str(per_request * REQUESTS_PER_PERIOD),
            "OPENAI_REQUESTS_PER_MINUTE": "10000",
            "LLM_RATE_LIMIT_PERIOD_SECONDS": str(PERIOD),
            "LLM_DEFAULT_MAX_TOKENS": str(ANSWER_BUDGET),
            "LLM_RATE_LIMIT_SCOPE": "shared",
        }
        instances: list[ServiceProcess] = []
        try:
            for _ in range(2):
                instances.append(
                    await start_service(
                        "llm_provider_service",
                        env=env,
                        log_dir=tmp_path,
                        keep_provider_keys=True,
                        unset_prefixes=PROVIDER_PREFIXES,
                        ready_path="/healthz/ready",
                    )
                )
            await audit_grants(service_database)
            await ensure_topics(kafka_bootstrap_servers, [callbacks], partitions=3)
            async with KafkaEventProducer(kafka_bootstrap_servers, client_id="test") as producer:
                for i, envelope in enumerate(envelopes):
                    await producer.publish(requests_topic, envelope, key=f"pair-{i}")
            # Delivery is at least once: when the second instance joins, a request still waiting
            # for the quota past the shutdown grace is answered again by the partition's new
            # owner. Read on until every request has a callback (duplicates are allowed).
            wanted = {e.data.request_id for e in envelopes}
            deadline = time.monotonic() + 120
            records = await read_topic(
                kafka_bootstrap_servers, callbacks, expected=REQUESTS, timeout=120
            )
            while time.monotonic() < deadline:
                seen = {
                    decode_event(r.value, LLMComparisonResultV1).data.request_id for r in records
                }
                if wanted <= seen:
                    break
                records = await read_topic(
                    kafka_bootstrap_servers,
                    callbacks,
                    expected=len(records) + len(wanted - seen),
                    timeout=max(1.0, deadline - time.monotonic()),
                )
        finally:
            for instance in instances:
                instance.kill()
    results = [decode_event(r.value, LLMComparisonResultV1).data for r in records]
    assert {r.request_id for r in results} == {e.data.request_id for e in envelopes}
    assert [r.error_detail for r in results if r.is_error] == []
    grants = await granted(service_database, "openai:tokens")
    # Every request was granted (an instance grants the calls waiting at once as one grant, so
    # count the requests granted, not the grants).
    assert sum(amount for _, amount in await granted(service_database, "openai:requests")) >= (
        REQUESTS
    )
    limit = per_request * REQUESTS_PER_PERIOD
    over = [
        (round(at - grants[0][0], 3), in_window)
        for at, in_window in windows(grants, PERIOD)
        if in_window > limit
    ]
    assert over == [], f"more than {limit} tokens granted within {PERIOD} s: {over}"


async def audit_grants(database_url: str) -> None:
    """Copy every grant the instances record into a table the purge of old grants leaves alone."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await connection.execute(
            """
            create table grant_audit (budget text not null, amount bigint not null,
                                      granted_at timestamptz not null);
            create function audit_grant() returns trigger language plpgsql as $$
            begin
                insert into grant_audit values (new.budget, new.amount, new.granted_at);
                return new;
            end $$;
            create trigger audit_grant after insert on rate_grants
                for each row execute function audit_grant();
            """
        )
    finally:
        await connection.close()


async def granted(database_url: str, budget: str) -> list[tuple[float, int]]:
    """A budget's grants, `(seconds since the epoch on the database's clock, amount)`, in
    order."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await connection.fetch(
            "select extract(epoch from granted_at)::float8 as at, amount from grant_audit"
            " where budget = $1 order by granted_at",
            budget,
        )
    finally:
        await connection.close()
    return [(float(row["at"]), int(row["amount"])) for row in rows]


def windows(grants: list[tuple[float, int]], period: float) -> list[tuple[float, int]]:
    """For each grant, the tokens granted in the period ending with it (the budget's own rule:
    a grant a whole period old has left the window)."""
    return [
        (at, sum(amount for other, amount in grants if at - period < other <= at))
        for at, _ in grants
    ]
