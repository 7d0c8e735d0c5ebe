"""Arbitrary Unicode (control characters, NULs, lone surrogates) and arbitrary bytes sent to the
real services through the real broker never stall a consumer: after each case, a valid request
on the same key still completes.

The CJ and LLM provider services run as processes (heuristic judge). Each hypothesis example
sends hostile CJ requests, LLM comparison results and LLM comparison requests, then one valid
CJ request, and waits for that batch to complete.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common_core.events import (
    CJAssessmentRequestV1,
    EssayToProcess,
    EventEnvelope,
)
from common_core.runtime.database import asyncpg_dsn
from common_core.runtime.kafka_producer import KafkaEventProducer, OutgoingMessage
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from devstack.postgres import with_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAME_KEY = "fuzzed-key"
# Every character class, and the ones PostgreSQL and JSON make hard, more often than chance would.
hostile_chars = st.one_of(
    st.characters(codec=None, categories=None),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\x1b", "\u2028", "\ufeff", "\x7f", "'", '"']),
)
hostile_text = st.text(hostile_chars, max_size=40)
json_leaf = st.one_of(hostile_text, st.integers(), st.none(), st.booleans())
hostile_json: st.SearchStrategy[Any] = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)


@dataclass(frozen=True)
class Stack:
    kafka: str
    prefix: str
    cj: ServiceProcess
    llm: ServiceProcess

    def topic(self, topic: Topic) -> str:
        return topic_name(topic, self.prefix)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    prefix = f"fz{uuid.uuid4().hex[:10]}"
    database = f"{prefix}_cj"
    logs = tmp_path_factory.mktemp("fuzz-logs")
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
        "CONSUMER_MAX_ATTEMPTS": "2",
    }
    llm = await start_service(
        "llm_provider_service", env={**common, "DATABASE_URL": postgres_server_url}, log_dir=logs
    )
    try:
        cj = await start_service(
            "cj_assessment_service",
            env={**common, "DATABASE_URL": with_database(postgres_server_url, database)},
            log_dir=logs,
        )
        try:
            yield Stack(kafka_bootstrap_servers, prefix, cj, llm)
        finally:
            cj.stop()
    finally:
        llm.stop()
        admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def _envelope(event_type: str, data: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "event_timestamp": "2026-12-01T12:00:00Z",
        "source_service": "fuzz",
        "schema_version": 1,
        "correlation_id": str(uuid.uuid4()),
        "data": data,
    }


@st.composite
def hostile_cj_request(draw: st.DrawFn) -> dict[str, Any]:
    """A CJ request whose fields (any of them) hold hostile text or JSON."""
    data: dict[str, Any] = {
        "entity_ref": draw(st.one_of(hostile_text, st.just(f"ref-{uuid.uuid4().hex}"))),
        "essays_to_process": [
            {"essay_id": draw(hostile_text), "text_content": draw(hostile_text)}
            for _ in range(draw(st.integers(0, 3)))
        ],
        "essay_instructions": draw(hostile_text),
        "language": draw(st.one_of(hostile_text, st.just("en"))),
    }
    if draw(st.booleans()):
        data["judge_rubric"] = draw(hostile_text)
    if draw(st.booleans()):
        data["llm_config_overrides"] = draw(hostile_json)
    if draw(st.booleans()):
        data["anchors"] = draw(hostile_json)
    return data


@st.composite
def hostile_comparison_result(draw: st.DrawFn) -> dict[str, Any]:
    """A comparison result for an unknown or malformed request, with hostile text anywhere."""
    return {
        "request_id": draw(st.one_of(st.uuids().map(str), hostile_text)),
        "request_metadata": draw(hostile_json),
        "winner": draw(st.sampled_from(["essay_a", "essay_b", "neither"])),
        "justification": draw(hostile_text),
        "confidence": draw(st.integers(-2, 7)),
        "provider": draw(hostile_text),
        "model": draw(hostile_text),
    }


@st.composite
def hostile_comparison_request(draw: st.DrawFn) -> dict[str, Any]:
    """A comparison request with hostile essays; its callback (if any) goes to a fuzz topic."""
    return {
        "request_id": str(uuid.uuid4()),
        "essay_a": {"essay_id": draw(hostile_text), "text_content": draw(hostile_text)},
        "essay_b": {"essay_id": draw(hostile_text), "text_content": draw(hostile_text)},
        "essay_instructions": draw(hostile_text),
        "callback_topic": draw(st.one_of(hostile_text, st.just("fuzz.callbacks"))),
        "request_metadata": draw(hostile_json),
    }


@dataclass(frozen=True)
class Case:
    cj_request: dict[str, Any]
    result: dict[str, Any]
    llm_request: dict[str, Any]
    raw: bytes


cases = st.builds(
    Case,
    cj_request=hostile_cj_request(),
    result=hostile_comparison_result(),
    llm_request=hostile_comparison_request(),
    raw=st.binary(max_size=64),
)


async def _send(stack: Stack, case: Case, valid: EventEnvelope[CJAssessmentRequestV1]) -> None:
    requests = stack.topic(Topic.CJ_ASSESSMENT_REQUESTED)
    messages = [
        OutgoingMessage(requests, case.raw, key=SAME_KEY),
        # ensure_ascii: a lone surrogate travels as its \\udXXX escape, as JSON allows.
        OutgoingMessage(
            requests, json.dumps(_envelope(requests, case.cj_request)).encode(), SAME_KEY
        ),
        OutgoingMessage(
            stack.topic(Topic.LLM_COMPARISON_RESULT),
            json.dumps(_envelope("fuzz", case.result)).encode(),
            SAME_KEY,
        ),
        OutgoingMessage(
            stack.topic(Topic.LLM_COMPARISON_REQUESTED),
            json.dumps(_envelope("fuzz", case.llm_request)).encode(),
            SAME_KEY,
        ),
    ]
    async with KafkaEventProducer(stack.kafka, client_id="fuzz") as producer:
        await producer.send_many(messages)
        await producer.publish(requests, valid, key=SAME_KEY)


async def _state(stack: Stack, entity_ref: str) -> str | None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        answer = await client.get(
            f"{stack.cj.url}/api/v1/batches", params={"entity_ref": entity_ref}
        )
    return str(answer.json()["state"]) if answer.status_code == 200 else None


async def _valid_request_completes(stack: Stack, case: Case) -> None:
    entity_ref = f"valid-{uuid.uuid4().hex}"
    valid = EventEnvelope[CJAssessmentRequestV1](
        event_type=stack.topic(Topic.CJ_ASSESSMENT_REQUESTED),
        source_service="fuzz",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=entity_ref,
            essays_to_process=[
                EssayToProcess(essay_id="a", text_content="A short essay about rivers."),
                EssayToProcess(essay_id="b", text_content="Rivers carve valleys over time."),
            ],
            essay_instructions="Write about rivers.",
        ),
    )
    await _send(stack, case, valid)
    await eventually(
        lambda: _state(stack, entity_ref),
        until=lambda state: state == "COMPLETED",
        timeout=60.0,
        what=f"the valid batch after a hostile case ({stack.cj.log_tail(2000)})",
    )


class TestArbitraryInput:
    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case=cases)
    def test_the_consumers_never_stall_whatever_they_are_sent(
        self, stack: Stack, case: Case
    ) -> None:
        asyncio.run(_valid_request_completes(stack, case))
        assert stack.cj.process.poll() is None, stack.cj.log_tail()
        assert stack.llm.process.poll() is None, stack.llm.log_tail()

    def test_every_log_line_is_json(self, stack: Stack) -> None:
        not_json = [
            f"{service.module}: {line[:300]}"
            for service in (stack.cj, stack.llm)
            for line in Path(service.log_path).read_text(errors="replace").splitlines()
            if line.strip() and not _is_json_object(line)
        ]
        assert not_json == []


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
