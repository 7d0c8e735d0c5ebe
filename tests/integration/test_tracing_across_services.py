"""One trace across the services: the three service processes export to an OTLP/HTTP receiver
inside the test, and a request that carries a W3C `traceparent` is followed to its end.

A CJ batch (the request event in, the completed event out) crosses the CJ service and the LLM
provider, through Kafka four times: its spans and the completed event's own `traceparent` belong
to the request's trace. An answer completed through the submission API is scored by the LLM
provider and comes back: its spans, from the HTTP request on, belong to that request's trace. No
span attribute holds an essay's or an answer's text.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from common_core.events import CJAssessmentCompletedV1, EssayToProcess
from common_core.events.envelope import decode_event
from common_core.runtime.database import asyncpg_dsn
from common_core.runtime.kafka_producer import KafkaEventProducer, envelope_message
from common_core.testing import eventually
from common_core.testing.kafka_reading import read_topic
from common_core.testing.otlp_receiver import OTLPReceiver, ReceivedSpan, running_otlp_receiver
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from devstack.postgres import with_database
from huleedu_cli.cj_batch import build_cj_request, request_envelope
from huleedu_cli.demo import SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("submission_service", "llm_provider_service", "cj_assessment_service")
ESSAYS = ("s06", "s08", "s10", "s11")
ANSWER = (
    "Tracing follows one request across processes. Each service continues the caller's trace, "
    "so an operator sees where the time went between the API, the broker and the model."
)


@dataclass(frozen=True)
class TracedStack:
    kafka: str
    prefix: str
    services: dict[str, ServiceProcess]
    receiver: OTLPReceiver

    def topic(self, topic: Topic) -> str:
        return topic_name(topic, self.prefix)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OTLPReceiver]:
    with running_otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    postgres_server_url: str,
    receiver: OTLPReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[TracedStack]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    databases = {name: f"{prefix}_{name.split('_')[0]}" for name in SERVICES}
    log_dir: Path = tmp_path_factory.mktemp("traced-stack") / "logs"
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
                "DATABASE_URL": with_database(postgres_server_url, databases[name]),
                "TOPIC_PREFIX": prefix,
                "LLM_DEFAULT_PROVIDER": "heuristic",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            }
            started[name] = await start_service(
                name, env=env, log_dir=log_dir, unset_prefixes=("OTEL_",)
            )
        yield TracedStack(kafka_bootstrap_servers, prefix, started, receiver)
    finally:
        for service in started.values():
            service.stop()
        admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
        try:
            for database in databases.values():
                await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await admin.close()


def _traceparent() -> tuple[str, str, str]:
    """A caller's trace: (trace id, span id, `traceparent` header)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def _trace_of(header: bytes | str) -> str:
    text = header.decode() if isinstance(header, bytes) else header
    return text.split("-")[1]


def _assert_one_tree(spans: list[ReceivedSpan], root_span_id: str) -> None:
    """Every span's parent is the caller's span or another span of the trace."""
    ids = {span.span_id for span in spans} | {root_span_id}
    orphans = [span.name for span in spans if span.parent_span_id not in ids]
    assert not orphans, f"spans outside the request's tree: {orphans}"


def _assert_no_text(spans: list[ReceivedSpan], texts: list[str]) -> None:
    snippets = [text.strip()[:40] for text in texts]
    for span in spans:
        for value in span.attributes.values():
            assert not any(snippet in str(value) for snippet in snippets), span.name


def _services(spans: list[ReceivedSpan]) -> set[str]:
    return {span.service for span in spans}


class TestOneTraceAcrossServices:
    async def test_a_cj_batch_is_one_trace_from_the_request_to_the_completed_event(
        self, stack: TracedStack
    ) -> None:
        texts = [(SAMPLES / "essays" / f"{essay}.txt").read_text() for essay in ESSAYS]
        entity_ref = f"traced-{uuid.uuid4().hex[:8]}"
        request = build_cj_request(
            [EssayToProcess(essay_id=e, text_content=t) for e, t in zip(ESSAYS, texts)],
            entity_ref=entity_ref,
        )
        envelope = request_envelope(request, topic_prefix=stack.prefix)
        trace_id, root_span_id, traceparent = _traceparent()
        message = envelope_message(stack.topic(Topic.CJ_ASSESSMENT_REQUESTED), envelope, entity_ref)
        message.headers.append(("traceparent", traceparent.encode()))
        async with KafkaEventProducer(stack.kafka, client_id="traced-test") as producer:
            await producer.send(message)

        [record] = await read_topic(
            stack.kafka, stack.topic(Topic.CJ_ASSESSMENT_COMPLETED), expected=1, timeout=240.0
        )
        completed = decode_event(record.value, CJAssessmentCompletedV1)
        assert completed.data.entity_ref == entity_ref
        assert _trace_of(dict(record.headers)["traceparent"]) == trace_id

        completed_publish = f"{stack.topic(Topic.CJ_ASSESSMENT_COMPLETED)} publish"
        spans = await eventually(
            lambda: _spans(stack.receiver, trace_id),
            until=lambda found: completed_publish in {span.name for span in found},
            timeout=30.0,
            what="the completed event's publish span",
        )
        assert _services(spans) == {"cj_assessment_service", "llm_provider_service"}
        names = {span.name for span in spans}
        assert f"{stack.topic(Topic.CJ_ASSESSMENT_REQUESTED)} process" in names
        assert f"{stack.topic(Topic.LLM_COMPARISON_REQUESTED)} process" in names
        assert f"{stack.topic(Topic.LLM_COMPARISON_RESULT)} process" in names
        assert "db.transaction" in names
        compares = [span for span in spans if span.name == "llm compare"]
        assert len(compares) == len(ESSAYS) * (len(ESSAYS) - 1) // 2
        assert {span.attributes["gen_ai.provider.name"] for span in compares} == {"heuristic"}
        [batch_id] = {span.attributes["huleedu.batch_id"] for span in compares}
        [request_span] = [
            span
            for span in spans
            if span.name == f"handle event {stack.topic(Topic.CJ_ASSESSMENT_REQUESTED)}"
        ]
        assert request_span.attributes["huleedu.entity_ref"] == entity_ref
        assert request_span.attributes["huleedu.batch_id"] == batch_id
        _assert_one_tree(spans, root_span_id)
        _assert_no_text(stack.receiver.spans(), texts)

    async def test_an_answer_scored_through_the_submission_api_is_one_trace(
        self, stack: TracedStack
    ) -> None:
        trace_id, root_span_id, traceparent = _traceparent()
        token = {"X-Anonymous-Token": str(uuid.uuid4())}
        async with httpx.AsyncClient(
            base_url=stack.services["submission_service"].url, timeout=10.0
        ) as client:
            created = await client.post(
                "/api/assessments/responses",
                json={
                    "question_id": "short-essay",
                    "module_slug": "argument",
                    "answer_text": ANSWER,
                },
                headers=token,
            )
            created.raise_for_status()
            response_id = created.json()["id"]
            completed = await client.patch(
                f"/api/assessments/responses/{response_id}",
                json={"answer_text": ANSWER, "completed_at": datetime.now(UTC).isoformat()},
                headers={**token, "traceparent": traceparent},
            )
            completed.raise_for_status()

        result_process = f"{stack.topic(Topic.LLM_RUBRIC_RESULT)} process"
        spans = await eventually(
            lambda: _spans(stack.receiver, trace_id),
            until=lambda found: result_process in {span.name for span in found},
            timeout=120.0,
            what="the submission service consuming the rubric result",
        )
        assert _services(spans) == {"submission_service", "llm_provider_service"}
        [server] = [span for span in spans if span.parent_span_id == root_span_id]
        assert server.name == "PATCH /api/assessments/responses/<response_id>"
        assert server.service == "submission_service"
        assert server.attributes["http.response.status_code"] == 200
        assert "llm score" in {span.name for span in spans}
        _assert_one_tree(spans, root_span_id)
        _assert_no_text(stack.receiver.spans(), [ANSWER])


async def _spans(receiver: OTLPReceiver, trace_id: str) -> list[ReceivedSpan]:
    return receiver.spans(trace_id)
