"""Running one CJ batch as an upstream orchestrator does: request event in, outcome event out.

`run_cj_batch` is the whole thing against real Kafka and the CJ status API (the demo calls it);
`follow_cj_batch` is the same flow over the two Protocols below, so it can run against fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from common_core.events import (
    AnchorEssay,
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EssaySetReference,
    EssayToProcess,
    EventEnvelope,
    HumanJudgingRequest,
    LLMConfig,
    LLMProviderName,
)
from common_core.runtime.kafka_security import PLAINTEXT, KafkaSecurity
from common_core.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name
from huleedu_cli.errors import CJBatchFailedError, CJBatchTimeoutError, StatusUnavailableError
from huleedu_cli.essay_upload import INLINE_REQUEST_LIMIT_BYTES, sendable_request
from huleedu_cli.kafka_client import DEFAULT_BOOTSTRAP_SERVERS, open_cj_channel
from huleedu_cli.status_client import DEFAULT_CJ_URL, BatchStatus, CJStatusClient

SOURCE_SERVICE = "huleedu_cli"
ProgressCallback = Callable[[BatchStatus | None], None]
UploadCallback = Callable[[int, EssaySetReference], None]
"""Told the essay count and the reference when the essays were uploaded instead of inlined."""


class CJEventChannel(Protocol):
    """Where requests go and outcomes come from (Kafka in production)."""

    async def publish_request(self, envelope: EventEnvelope[CJAssessmentRequestV1]) -> None:
        """Publish the request; returns once it is durably accepted."""
        ...

    async def wait_for_outcome(
        self, entity_ref: str
    ) -> CJAssessmentCompletedV1 | CJAssessmentFailedV1:
        """The completed or failed event about `entity_ref`."""
        ...


class BatchStatusSource(Protocol):
    """Where progress comes from (the CJ service's HTTP API in production)."""

    async def batch_for_entity(self, entity_ref: str) -> BatchStatus | None:
        """The batch's status, or None while it does not exist yet."""
        ...


def new_entity_ref() -> str:
    """A fresh, readable upstream batch reference."""
    return f"cli-{datetime.now(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def build_cj_request(
    essays: Sequence[EssayToProcess],
    *,
    entity_ref: str,
    essay_instructions: str = "",
    judge_rubric: str | None = None,
    anchors: Sequence[AnchorEssay] = (),
    provider: LLMProviderName | None = None,
    model: str | None = None,
    max_comparisons: int | None = None,
    language: str = "en",
    course_code: str | None = None,
    human_judging: HumanJudgingRequest | None = None,
) -> CJAssessmentRequestV1:
    """The request event payload for a batch of essays (with human judges beside the AI when
    `human_judging` is given)."""
    overrides = LLMConfig(provider=provider, model=model) if provider is not None or model else None
    return CJAssessmentRequestV1(
        entity_ref=entity_ref,
        essays_to_process=list(essays),
        language=language,
        course_code=course_code,
        essay_instructions=essay_instructions,
        judge_rubric=judge_rubric,
        llm_config_overrides=overrides,
        max_comparisons=max_comparisons,
        anchors=list(anchors),
        human_judging=human_judging,
    )


def request_envelope(
    request: CJAssessmentRequestV1,
    *,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    correlation_id: uuid.UUID | None = None,
) -> EventEnvelope[CJAssessmentRequestV1]:
    """Wrap a request in its envelope with a fresh (or the given) correlation id."""
    return EventEnvelope[CJAssessmentRequestV1](
        event_type=topic_name(Topic.CJ_ASSESSMENT_REQUESTED, topic_prefix),
        source_service=SOURCE_SERVICE,
        correlation_id=correlation_id or uuid.uuid4(),
        data=request,
    )


async def _report_progress(
    source: BatchStatusSource, entity_ref: str, on_progress: ProgressCallback, interval: float
) -> None:
    while True:
        try:
            status = await source.batch_for_entity(entity_ref)
        except StatusUnavailableError:
            status = None  # progress is a courtesy; the outcome event is what counts
        on_progress(status)
        await asyncio.sleep(interval)


async def follow_cj_batch(
    envelope: EventEnvelope[CJAssessmentRequestV1],
    *,
    channel: CJEventChannel,
    status_source: BatchStatusSource | None = None,
    on_progress: ProgressCallback | None = None,
    timeout: float = 600.0,
    poll_interval: float = 1.0,
) -> CJAssessmentCompletedV1:
    """Publish the request, report progress while waiting, return the completed event.

    Raises CJBatchFailedError for a failed event and CJBatchTimeoutError when neither arrives.
    """
    entity_ref = envelope.data.entity_ref
    await channel.publish_request(envelope)
    poller: asyncio.Task[None] | None = None
    if status_source is not None and on_progress is not None:
        poller = asyncio.create_task(
            _report_progress(status_source, entity_ref, on_progress, poll_interval)
        )
    try:
        async with asyncio.timeout(timeout):
            outcome = await channel.wait_for_outcome(entity_ref)
    except TimeoutError as exc:
        raise CJBatchTimeoutError(
            f"no completed or failed event for {entity_ref} within {timeout:g}s"
        ) from exc
    finally:
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    if isinstance(outcome, CJAssessmentFailedV1):
        raise CJBatchFailedError(outcome)
    return outcome


async def run_cj_batch(
    request: CJAssessmentRequestV1,
    *,
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS,
    security: KafkaSecurity = PLAINTEXT,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    cj_url: str = DEFAULT_CJ_URL,
    timeout: float = 600.0,
    connect_timeout: float = 10.0,
    on_progress: ProgressCallback | None = None,
    correlation_id: uuid.UUID | None = None,
    inline_limit_bytes: int = INLINE_REQUEST_LIMIT_BYTES,
    on_upload: UploadCallback | None = None,
    api_token: str | None = None,
) -> CJAssessmentCompletedV1:
    """Run one batch through the real stack and return its completed event.

    A request too large for one Kafka message (`inline_limit_bytes` encoded) has its essays
    uploaded to the CJ service first and carries the set's reference instead (claim check).
    `api_token` is the bearer token sent to the CJ service's API (None: none).

    Raises BrokerUnavailableError, BrokerRefusedError, EssayUploadError, CJBatchFailedError or
    CJBatchTimeoutError.
    """
    envelope = request_envelope(request, topic_prefix=topic_prefix, correlation_id=correlation_id)
    envelope, reference = await sendable_request(
        envelope, cj_url=cj_url, limit_bytes=inline_limit_bytes, api_token=api_token
    )
    if reference is not None and on_upload is not None:
        on_upload(len(request.essays_to_process), reference)
    async with (
        open_cj_channel(
            bootstrap_servers,
            topic_prefix=topic_prefix,
            connect_timeout=connect_timeout,
            security=security,
        ) as channel,
        CJStatusClient(cj_url, api_token=api_token) as status,
    ):
        return await follow_cj_batch(
            envelope,
            channel=channel,
            status_source=status,
            on_progress=on_progress,
            timeout=timeout,
        )
