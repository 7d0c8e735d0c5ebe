"""The Kafka consumer of comparison and rubric requests: one callback per request.

The requests run concurrently on common_core's `ConcurrentConsumerRunner` (a slow LLM call must
not hold up the requests behind it): up to `LLM_MAX_IN_FLIGHT` at once, offsets committed in
order once each request's callback is acknowledged by the broker, so a crash redelivers
unanswered requests and never loses one. This module supplies the handler and the answer to a
request that is dead-lettered.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.envelope import PayloadValidationError, RawEnvelope, new_event
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMRubricRequestV1,
    LLMRubricResultV1,
)
from common_core.limits import (
    MAX_METADATA_BYTES,
    Identifier,
    TopicName,
    storable_json_problem,
)
from common_core.runtime.database import is_database_unavailable
from common_core.runtime.error_text import describe_error
from common_core.runtime.failures import is_transient
from common_core.runtime.kafka_concurrent import (
    ConcurrentConsumerRunner,
    EventHandler,
    StopConsumer,
)
from common_core.runtime.kafka_consumer import (
    ConsumedEvent,
    DeadLetter,
    DeadLetterResponder,
    RejectMessage,
)
from common_core.runtime.kafka_producer import (
    KafkaEventProducer,
    OutgoingMessage,
    envelope_message,
    send_acknowledged,
)
from common_core.runtime.logging import bound_log_context
from common_core.runtime.providers import instance_client_id
from common_core.topics import Topic
from llm_provider_service.application.answering import RequestAnswerer, answer_key
from llm_provider_service.application.batching import BatchIntake
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.metrics import CALLBACKS_PUBLISHED, IN_FLIGHT

log = structlog.get_logger(__name__)

_PUBLISH_ATTEMPTS = 8

INTERNAL = "internal"
"""Dead-letter code of a request that could not be answered (a bug, not a provider failure)."""
CALLBACK_UNDELIVERABLE = "callback_undeliverable"
"""Dead-letter code of a request whose callback the broker refused for good."""


class CallbackUndeliverable(StopConsumer):
    """The broker stayed unreachable while the callback was published: the process must
    restart so the request is redelivered."""


def request_topics(settings: Settings) -> dict[str, type[BaseModel]]:
    """The topics the request consumer reads and the payload each carries."""
    return {
        settings.topic(Topic.LLM_COMPARISON_REQUESTED): LLMComparisonRequestV1,
        settings.topic(Topic.LLM_RUBRIC_REQUESTED): LLMRubricRequestV1,
    }


def request_consumer(
    settings: Settings,
    answerer: RequestAnswerer,
    producer: KafkaEventProducer,
    batches: BatchIntake | None = None,
) -> ConcurrentConsumerRunner:
    """Consumes comparison and rubric requests, up to `LLM_MAX_IN_FLIGHT` at once."""
    payloads = request_topics(settings)
    responder = rejected_request_responder(payloads)
    session_timeout_ms = settings.llm_kafka_session_timeout_ms
    return ConcurrentConsumerRunner(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security=settings.kafka_security,
        group_id=settings.llm_consumer_group,
        client_id=instance_client_id(SERVICE_NAME, settings),
        payloads=payloads,
        handler=request_handler(answerer, producer, batches),
        producer=producer,
        max_in_flight=settings.llm_max_in_flight,
        responders=dict.fromkeys(payloads, responder),
        max_attempts=settings.consumer_max_attempts,
        fetch_timeout_ms=settings.llm_fetch_timeout_ms,
        commit_interval_seconds=settings.llm_commit_interval_seconds,
        shutdown_grace_seconds=settings.llm_shutdown_grace_seconds,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(300, session_timeout_ms // 4),
        dead_letter_send_attempts=_PUBLISH_ATTEMPTS,
        on_answered=lambda _letter, count: CALLBACKS_PUBLISHED.labels(kind="rejection").inc(count),
        on_in_flight=IN_FLIGHT.set,
    )


def request_handler(
    answerer: RequestAnswerer, producer: KafkaEventProducer, batches: BatchIntake | None
) -> EventHandler:
    """Answers a request and publishes its callback (or records a batch-mode request).

    A failure that is a bug, not a provider's (those become error callbacks), is rejected as
    `internal`: the responder answers the sender and the request is parked in the DLQ instead of
    being asked of the provider again.
    """

    async def handle(event: ConsumedEvent[Any]) -> None:
        envelope = event.envelope
        with bound_log_context(
            correlation_id=envelope.correlation_id,
            event_id=envelope.event_id,
            request_id=getattr(envelope.data, "request_id", None),
        ):
            if batches is not None and batches.takes(envelope.data):
                # Batch mode: handled once recorded; the callback leaves through the outbox.
                try:
                    await batches.enqueue(envelope, event.key)
                except Exception as exc:
                    if is_database_unavailable(exc):
                        raise  # the runner retries it while the database is away
                    raise _unanswerable(event, exc) from exc
                return
            try:
                callback, kind = await _answer(answerer, event)
            except Exception as exc:
                raise _unanswerable(event, exc) from exc
            try:
                await send_acknowledged(producer, [callback], attempts=_PUBLISH_ATTEMPTS)
            except Exception as exc:
                if is_transient(exc):
                    raise CallbackUndeliverable(f"could not publish to {callback.topic}") from exc
                log.warning("callback_rejected_by_broker", error=describe_error(exc))
                raise RejectMessage(event, describe_error(exc), CALLBACK_UNDELIVERABLE) from exc
            CALLBACKS_PUBLISHED.labels(kind=kind).inc()

    return handle


def _unanswerable(event: ConsumedEvent[Any], exc: Exception) -> RejectMessage:
    log.error("request_unanswerable", error=describe_error(exc), exc_info=exc)
    return RejectMessage(event, type(exc).__name__, INTERNAL)


async def _answer(
    answerer: RequestAnswerer, event: ConsumedEvent[Any]
) -> tuple[OutgoingMessage, str]:
    request = event.envelope.data
    correlation_id = event.envelope.correlation_id
    result: LLMComparisonResultV1 | LLMRubricResultV1
    if isinstance(request, LLMComparisonRequestV1):
        result = await answerer.answer_comparison(request, correlation_id)
        kind = "comparison"
    else:
        result = await answerer.answer_rubric(request, correlation_id)
        kind = "rubric"
    callback = new_event(
        request.callback_topic,
        result,
        source_service=SERVICE_NAME,
        correlation_id=correlation_id,
    )
    outcome = result.error_detail
    key = answer_key(request, event.key)
    log.info(
        "request_answered",
        kind=kind,
        error_code=outcome.code.value if outcome is not None else None,
    )
    return envelope_message(request.callback_topic, callback, key), kind


def rejected_request_responder(payloads: dict[str, type[BaseModel]]) -> DeadLetterResponder:
    """Answers a request that will not be answered (outside the contract, or a bug) with an
    error callback when its envelope is readable, so nobody waits for ever on it."""

    def respond(letter: DeadLetter) -> list[OutgoingMessage]:
        if letter.envelope is None or letter.code == CALLBACK_UNDELIVERABLE:
            return []
        model = payloads[letter.topic]
        if letter.code == PayloadValidationError.code:
            answer = rejection_callback(
                letter.envelope,
                model,
                ErrorCode.VALIDATION,
                "request rejected: "
                + "; ".join(f"{f.field}: {f.reason}" for f in letter.fields[:5]),
                fields=[{"field": f.field, "reason": f.reason} for f in letter.fields],
                key=letter.key,
            )
        else:
            answer = rejection_callback(
                letter.envelope,
                model,
                ErrorCode.INTERNAL,
                f"the request could not be answered: unexpected {letter.reason}",
                fields=[],
                key=letter.key,
            )
        return [answer] if answer is not None else []

    return respond


def rejection_callback(
    envelope: RawEnvelope,
    request_model: type[BaseModel],
    code: ErrorCode,
    message: str,
    *,
    fields: list[dict[str, str]],
    key: str | None,
) -> OutgoingMessage | None:
    """The error callback for a request that will not be answered, read from its untyped
    envelope; None when the request names no usable request id or callback topic."""
    data = envelope.data
    try:
        request_id = UUID(str(data.get("request_id")))
        callback_topic = _CALLBACK_TOPIC.validate_python(data.get("callback_topic"))
    except (ValueError, ValidationError):
        return None
    try:  # the answer key the sender asked for, when it is a usable one
        callback_key: str | None = _CALLBACK_KEY.validate_python(data.get("callback_key"))
    except ValidationError:
        callback_key = None
    metadata = data.get("request_metadata")
    if not isinstance(metadata, dict) or storable_json_problem(metadata, MAX_METADATA_BYTES):
        metadata = {}  # what cannot be echoed safely is not echoed
    error = ErrorDetail(
        code=code,
        message=message,
        correlation_id=envelope.correlation_id,
        service=SERVICE_NAME,
        operation="validate_request" if code is ErrorCode.VALIDATION else "answer_request",
        retryable=False,
        details={"fields": fields, "field": fields[0]["field"] if fields else None},
    )
    result_model: type[LLMComparisonResultV1] | type[LLMRubricResultV1] = (
        LLMComparisonResultV1 if request_model is LLMComparisonRequestV1 else LLMRubricResultV1
    )
    result = result_model(
        request_id=request_id,
        request_metadata=metadata,
        error_detail=error,
        provider="none",
        model="none",
    )
    callback = new_event(
        callback_topic,
        result,
        source_service=SERVICE_NAME,
        correlation_id=envelope.correlation_id,
        event_id=uuid5(NAMESPACE_URL, f"huleedu:llm-request-rejected:{envelope.event_id}"),
    )
    return envelope_message(callback_topic, callback, callback_key or key or str(request_id))


_CALLBACK_TOPIC: TypeAdapter[str] = TypeAdapter(TopicName)
_CALLBACK_KEY: TypeAdapter[str | None] = TypeAdapter(Identifier | None)
