"""Kafka consumers of the CJ service: assessment requests and comparison callbacks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import SERVICE_NAME, Settings
from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.cj import CJAssessmentFailedV1, CJAssessmentRequestV1, SystemMetadata
from common_core.events.envelope import new_event
from common_core.events.llm import LLMComparisonResultV1
from common_core.limits import MAX_ID_CHARS, clean_text, storable_text_problem
from common_core.runtime.kafka_consumer import (
    BatchHandler,
    ConsumedEvent,
    DeadLetter,
    DeadLetterResponder,
    KafkaConsumerRunner,
    event_span,
)
from common_core.runtime.kafka_producer import (
    KafkaEventProducer,
    OutgoingMessage,
    envelope_message,
)
from common_core.runtime.logging import bound_log_context
from common_core.runtime.tracing import BATCH_ID, ENTITY_REF, annotate
from common_core.topics import Topic

log = structlog.get_logger(__name__)

REQUEST_GROUP = SERVICE_NAME
CALLBACK_GROUP = f"{SERVICE_NAME}.callbacks"


def request_consumer(
    settings: Settings,
    transactions: Transactions,
    workflow: CJWorkflow,
    producer: KafkaEventProducer,
    client_id: str,
) -> KafkaConsumerRunner:
    """Consumes CJ assessment requests; one transaction per request."""

    async def handle(events: Sequence[ConsumedEvent[Any]]) -> None:
        for event in events:
            envelope = event.envelope
            with (
                bound_log_context(
                    correlation_id=envelope.correlation_id,
                    event_id=envelope.event_id,
                    entity_ref=envelope.data.entity_ref,
                ),
                event_span(event, **{ENTITY_REF: envelope.data.entity_ref}),
            ):
                async with transactions() as uow:
                    batch_id = await workflow.handle_request(uow, envelope)
                annotate(**{BATCH_ID: str(batch_id) if batch_id is not None else None})

    request_topic = settings.topic(Topic.CJ_ASSESSMENT_REQUESTED)
    return KafkaConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security=settings.kafka_security,
        group_id=REQUEST_GROUP,
        payloads={request_topic: CJAssessmentRequestV1},
        handler=handle,
        producer=producer,
        client_id=f"{client_id}-requests",
        max_batch_size=20,
        max_attempts=settings.consumer_max_attempts,
        responders={request_topic: rejected_request_responder(settings)},
    )


def rejected_request_responder(settings: Settings) -> DeadLetterResponder:
    """Answers a CJ request the service gives up on with a failed event, so the upstream learns
    which field was wrong (or that processing failed) instead of waiting for ever.

    Nothing of such a request is stored (it may hold what PostgreSQL cannot store), so the
    event carries no `cj_assessment_job_id`. Its event id is derived from the request's, so a
    redelivery repeats the same event rather than adding one.
    """
    failed_topic = settings.topic(Topic.CJ_ASSESSMENT_FAILED)

    def respond(letter: DeadLetter) -> list[OutgoingMessage]:
        envelope = letter.envelope
        entity_ref = envelope.data.get("entity_ref") if envelope is not None else None
        if envelope is None or not isinstance(entity_ref, str) or not entity_ref:
            return []  # nobody to answer: the dead letter is all there is
        if "surrogate" in (storable_text_problem(entity_ref) or ""):
            entity_ref = clean_text(entity_ref, len(entity_ref))  # UTF-8 JSON cannot carry it
        invalid = letter.code == "payload_invalid"
        fields = [{"field": f.field, "reason": f.reason} for f in letter.fields]
        message = (
            "request rejected: " + "; ".join(f"{f['field']}: {f['reason']}" for f in fields[:5])
            if invalid and fields
            else f"request could not be processed after {letter.attempts} attempts: {letter.reason}"
        )
        now = datetime.now(UTC)
        payload = CJAssessmentFailedV1(
            entity_ref=entity_ref,
            error_detail=ErrorDetail(
                code=ErrorCode.VALIDATION if invalid else ErrorCode.INTERNAL,
                message=message,
                correlation_id=envelope.correlation_id,
                service=SERVICE_NAME,
                operation="validate_request" if invalid else "handle_request",
                retryable=False,
                details={
                    "fields": fields,
                    "field": fields[0]["field"] if fields else None,
                    "dead_letter_code": letter.code,
                    "request_event_id": str(envelope.event_id),
                },
            ),
            system_metadata=SystemMetadata(processed_at=now, processing_duration_seconds=0.0),
        )
        failed = new_event(
            failed_topic,
            payload,
            source_service=SERVICE_NAME,
            correlation_id=envelope.correlation_id,
            event_id=uuid5(NAMESPACE_URL, f"huleedu:cj-request-rejected:{envelope.event_id}"),
        )
        metrics.REQUESTS_HANDLED.labels(outcome="invalid" if invalid else "failed").inc()
        log.warning(
            "cj_request_rejected",
            correlation_id=str(envelope.correlation_id),
            event_id=str(envelope.event_id),
            entity_ref=entity_ref[:MAX_ID_CHARS],
            fields=[f["field"] for f in fields],
            code=letter.code,
        )
        return [envelope_message(failed_topic, failed, letter.key or entity_ref[:MAX_ID_CHARS])]

    return respond


def callback_handler(transactions: Transactions, workflow: CJWorkflow) -> BatchHandler:
    """The handler recording one fetched batch of callbacks in one transaction."""

    async def handle(events: Sequence[ConsumedEvent[Any]]) -> None:
        async with transactions() as uow:
            report = await workflow.record_results(uow, [e.envelope.data for e in events])
        if report.orphans:
            log.warning("cj_orphan_callbacks", count=report.orphans)

    return handle


def callback_consumer(
    settings: Settings,
    transactions: Transactions,
    workflow: CJWorkflow,
    producer: KafkaEventProducer,
    client_id: str,
) -> KafkaConsumerRunner:
    """Consumes comparison results; one transaction per fetched batch of messages."""
    return KafkaConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security=settings.kafka_security,
        group_id=CALLBACK_GROUP,
        payloads={settings.callback_topic: LLMComparisonResultV1},
        handler=callback_handler(transactions, workflow),
        producer=producer,
        client_id=f"{client_id}-callbacks",
        max_batch_size=settings.callback_batch_size,
        fetch_max_wait_ms=settings.callback_fetch_max_wait_ms,
        max_attempts=settings.consumer_max_attempts,
    )
