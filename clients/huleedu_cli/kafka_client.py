"""The Kafka side of the upstream role: publish a CJ request, wait for its outcome event.

The outcome consumer is positioned at the end of the completed and failed topics BEFORE the
request is published, so an answer can never slip past between publishing and listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from common_core.events import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EnvelopeDecodeError,
    EventEnvelope,
    PayloadValidationError,
    decode_envelope,
)
from common_core.runtime.kafka_admin import TopicCreationError, apply_topics
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.kafka_security import (
    PLAINTEXT,
    KafkaAccessError,
    KafkaSecurity,
    KafkaSecuritySettings,
    check_kafka_access,
)
from common_core.runtime.settings import TopicSettings
from common_core.topics import DEFAULT_TOPIC_PREFIX, Topic, topic_name
from huleedu_cli.errors import (
    BrokerRefusedError,
    BrokerUnavailableError,
    InputError,
    TopicsRefusedError,
)

CJOutcome = CJAssessmentCompletedV1 | CJAssessmentFailedV1
DEFAULT_BOOTSTRAP_SERVERS = "127.0.0.1:9092"
CLIENT_ID = "huleedu-cli"

# aiokafka logs every failed connection attempt; the CLI reports one clear line instead.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


class KafkaCJChannel:
    """A started producer plus a consumer parked at the end of the CJ outcome topics."""

    def __init__(
        self,
        producer: KafkaEventProducer,
        consumer: AIOKafkaConsumer,
        *,
        request_topic: str,
        completed_topic: str,
        failed_topic: str,
    ) -> None:
        self._producer = producer
        self._consumer = consumer
        self.request_topic = request_topic
        self._outcome_models: dict[str, type[CJAssessmentCompletedV1 | CJAssessmentFailedV1]] = {
            completed_topic: CJAssessmentCompletedV1,
            failed_topic: CJAssessmentFailedV1,
        }

    async def publish_request(self, envelope: EventEnvelope[CJAssessmentRequestV1]) -> None:
        """Publish the request keyed by its entity_ref; returns once the broker acknowledged."""
        await self._producer.publish(self.request_topic, envelope, key=envelope.data.entity_ref)

    async def wait_for_outcome(self, entity_ref: str) -> CJOutcome:
        """The first completed or failed event about `entity_ref` after the channel opened."""
        while True:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    outcome = self._outcome_of(record, entity_ref)
                    if outcome is not None:
                        return outcome

    def _outcome_of(
        self, record: ConsumerRecord[bytes, bytes], entity_ref: str
    ) -> CJOutcome | None:
        if record.key is not None and record.key.decode("utf-8", "replace") != entity_ref:
            return None
        model = self._outcome_models.get(record.topic)
        if model is None or record.value is None:
            return None
        try:
            payload = decode_envelope(record.value).typed(model).data
        except (EnvelopeDecodeError, PayloadValidationError):
            return None  # not ours to judge: the producer's DLQ handling covers bad events
        return payload if payload.entity_ref == entity_ref else None


def topic_layout(topic_prefix: str) -> TopicSettings:
    """The topics' layout under the prefix, from the environment as the services read it."""
    try:
        return TopicSettings(topic_prefix=topic_prefix)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc']).upper()}: {issue['msg']}"
            for issue in error.errors()
        )
        raise InputError(f"invalid topic settings: {problems}") from None


def kafka_security_from_environment() -> KafkaSecurity:
    """The Kafka security settings the services read (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
    KAFKA_SSL_*), read from the CLI's environment; an unusable one is an `InputError`."""
    try:
        return KafkaSecuritySettings().kafka_security
    except ValidationError as exc:
        reasons = "; ".join(
            str(error["msg"]).removeprefix("Value error, ") for error in exc.errors()
        )
        raise InputError(f"Kafka settings: {reasons}") from None


@contextlib.asynccontextmanager
async def connecting(
    bootstrap_servers: str, connect_timeout: float, security: KafkaSecurity = PLAINTEXT
) -> AsyncIterator[None]:
    """Bound a connection step by the timeout and report failures as one clear error; the
    broker's certificate and the credentials are checked first, so a refusal names its setting."""
    try:
        async with asyncio.timeout(connect_timeout):
            await check_kafka_access(bootstrap_servers, security, timeout=connect_timeout)
            yield
    except KafkaAccessError as exc:
        raise BrokerRefusedError(str(exc)) from None
    except TimeoutError as exc:
        raise BrokerUnavailableError(
            f"cannot reach the Kafka broker at {bootstrap_servers}: "
            f"no answer within {connect_timeout:g}s"
        ) from exc
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailableError(
            f"cannot reach the Kafka broker at {bootstrap_servers}: {type(exc).__name__}"
        ) from exc


@contextlib.asynccontextmanager
async def open_cj_channel(
    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS,
    *,
    topic_prefix: str = DEFAULT_TOPIC_PREFIX,
    connect_timeout: float = 10.0,
    security: KafkaSecurity = PLAINTEXT,
) -> AsyncIterator[KafkaCJChannel]:
    """Connect, make sure the CJ topics exist (created as `huleedu topics plan` lays them out
    when missing), park a consumer at their ends; then yield."""
    request_topic = topic_name(Topic.CJ_ASSESSMENT_REQUESTED, topic_prefix)
    completed_topic = topic_name(Topic.CJ_ASSESSMENT_COMPLETED, topic_prefix)
    failed_topic = topic_name(Topic.CJ_ASSESSMENT_FAILED, topic_prefix)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id=CLIENT_ID,
        group_id=None,  # manual assignment: no group offsets to share with anyone
        enable_auto_commit=False,
        isolation_level="read_committed",
        request_timeout_ms=int(connect_timeout * 1000),
        **security.client_kwargs(),
    )
    producer: KafkaEventProducer | None = None
    try:
        async with connecting(bootstrap_servers, connect_timeout, security):
            await consumer.start()
            layout = topic_layout(topic_prefix)
            try:
                await apply_topics(
                    bootstrap_servers,
                    layout.topic_specs([request_topic, completed_topic, failed_topic]),
                    security=security,
                    request_timeout_seconds=connect_timeout,
                )
            except TopicCreationError as error:
                raise TopicsRefusedError(
                    f"{error}; create them with huleedu topics apply"
                ) from None
            except KafkaAccessError as error:
                raise BrokerRefusedError(str(error)) from None
            producer = KafkaEventProducer(
                bootstrap_servers,
                client_id=CLIENT_ID,
                security=security,
                request_timeout_ms=int(connect_timeout * 1000),
            )
            await producer.start()
            await _park_at_end(
                consumer, bootstrap_servers, [completed_topic, failed_topic], security
            )
        yield KafkaCJChannel(
            producer,
            consumer,
            request_topic=request_topic,
            completed_topic=completed_topic,
            failed_topic=failed_topic,
        )
    finally:
        if producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await producer.stop()
        with contextlib.suppress(KafkaError, OSError):
            await consumer.stop()


async def _park_at_end(
    consumer: AIOKafkaConsumer,
    bootstrap_servers: str,
    topics: list[str],
    security: KafkaSecurity,
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=CLIENT_ID, **security.client_kwargs()
    )
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    if {tp.topic for tp in partitions} != set(topics):
        raise BrokerUnavailableError(f"the broker does not list all of {', '.join(topics)}")
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for tp in partitions:
        await consumer.position(tp)  # resolve now, not lazily after the request is out
