"""An in-process submission service (real PostgreSQL and Kafka) for integration tests."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import jwt
from quart.typing import TestClientProtocol
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMRubricResultV1, RubricScores
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.kernel import ServiceRuntime, running_workers, service_runtime
from common_core.topics import Topic
from submission_service.config import Settings
from submission_service.entrypoints.runtime import SERVICE

TEST_JWT_SECRET = "integration-test-secret-0123456789abcdef"  # noqa: S105 - test-only key
# base64url of b"integration-test-webhook-key-001": the Fernet key of stored webhook secrets.
TEST_WEBHOOK_SECRET_KEY = "aW50ZWdyYXRpb24tdGVzdC13ZWJob29rLWtleS0wMDE="  # noqa: S105


def settings_for_tests(database_url: str, bootstrap: str, **overrides: Any) -> Settings:
    """Settings for a service under test: fast polling, a unique topic prefix."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:12]}",
        "topic_partitions": 1,
        "jwt_secret": TEST_JWT_SECRET,
        "webhook_secret_keys": TEST_WEBHOOK_SECRET_KEY,
        "webhook_allowlist": ["localhost"],
        "webhook_backoff_base_seconds": 0.2,
        "webhook_backoff_max_seconds": 1.0,
        "webhook_poll_interval_seconds": 0.1,
        "outbox_poll_interval_seconds": 0.2,
        "log_json": False,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def user_token(
    sub: str,
    *,
    secret: str = TEST_JWT_SECRET,
    issuer: str = "huleedu",
    audience: str = "huleedu-submission",
    expires_in: int = 3600,
    scope: str | None = None,
) -> str:
    """A signed HS256 JWT for tests (with a `scope` claim when given)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + expires_in,
    }
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, secret, algorithm="HS256")


def user_headers(sub: str) -> dict[str, str]:
    """Headers of a logged-in user."""
    return {"Authorization": f"Bearer {user_token(sub)}"}


def operator_headers(sub: str = "operator-1", scope: str = "submission:erase") -> dict[str, str]:
    """Headers of an operator whose token grants `scope`."""
    return {"Authorization": f"Bearer {user_token(sub, scope=scope)}"}


def anonymous_headers(token: uuid.UUID | None = None) -> dict[str, str]:
    """Headers of an anonymous learner."""
    return {"X-Anonymous-Token": str(token or uuid.uuid4())}


@dataclass
class ServiceUnderTest:
    """A running in-process service: its HTTP test client, settings and workers."""

    runtime: ServiceRuntime[Settings]
    client: TestClientProtocol
    engine: AsyncEngine
    producer: KafkaEventProducer

    @property
    def settings(self) -> Settings:
        """The service's settings."""
        return self.runtime.settings

    def topic(self, topic: Topic) -> str:
        """A topic's full name under the service's prefix."""
        return self.settings.topic(topic)

    async def answer(
        self, headers: dict[str, str], module_slug: str, question_id: str, **fields: Any
    ) -> dict[str, Any]:
        """Create an answer as the caller (asserts a 201); returns the created answer."""
        reply = await self.client.post(
            "/api/assessments/responses",
            json={"module_slug": module_slug, "question_id": question_id, **fields},
            headers=headers,
        )
        assert reply.status_code == 201, await reply.get_data()
        created: dict[str, Any] = await reply.get_json()
        return created

    async def start(self, headers: dict[str, str], definition_id: str = "intro-writing") -> str:
        """Start an attempt at a definition as the caller (asserts a 201); returns its id."""
        reply = await self.client.post(
            "/api/assessments", json={"definition_id": definition_id}, headers=headers
        )
        assert reply.status_code == 201, await reply.get_data()
        return str((await reply.get_json())["assessment_id"])

    async def status(self, headers: dict[str, str], assessment_id: str) -> dict[str, Any]:
        """The assessment's status as its owner reads it (asserts a 200)."""
        reply = await self.client.get(f"/api/assessments/{assessment_id}/status", headers=headers)
        assert reply.status_code == 200, await reply.get_data()
        body: dict[str, Any] = await reply.get_json()
        return body

    async def send_rubric_result(
        self, result: LLMRubricResultV1, *, event_id: uuid.UUID | None = None
    ) -> EventEnvelope[LLMRubricResultV1]:
        """Play the LLM provider: publish a rubric result to the callback topic."""
        topic = self.topic(Topic.LLM_RUBRIC_RESULT)
        envelope = EventEnvelope[LLMRubricResultV1](
            event_id=event_id or uuid.uuid4(),
            event_type=topic,
            source_service="llm_provider_service",
            correlation_id=uuid.uuid4(),
            data=result,
        )
        await self.producer.publish(topic, envelope, key=str(result.request_id))
        return envelope


def rubric_result(
    request_id: uuid.UUID, metadata: dict[str, Any], *, overall: float = 4.0
) -> LLMRubricResultV1:
    """A successful rubric result as the heuristic judge would send it."""
    level = max(1, min(5, round(overall)))
    return LLMRubricResultV1(
        request_id=request_id,
        request_metadata=metadata,
        scores=RubricScores(relevance=level, depth=level, clarity=level, technical=level),
        overall=overall,
        feedback="clear and relevant",
        provider="heuristic",
        model="heuristic-v1",
        prompt_sha256="ab" * 32,
        prompt_version="rubric-v1",
    )


@contextlib.asynccontextmanager
async def running_service(settings: Settings) -> AsyncIterator[ServiceUnderTest]:
    """Migrate, create topics, start the workers and yield the service; stops everything."""
    async with service_runtime(SERVICE, settings) as runtime, running_workers(runtime):
        yield ServiceUnderTest(runtime, runtime.app.test_client(), runtime.engine, runtime.producer)


async def outbox_topics(engine: AsyncEngine, key: str) -> list[str]:
    """Topics of the outbox rows staged for an entity key, in order."""
    from sqlalchemy import select

    from common_core.runtime.outbox import event_outbox

    async with engine.connect() as connection:
        rows = await connection.execute(
            select(event_outbox.c.topic)
            .where(event_outbox.c.message_key == key)
            .order_by(event_outbox.c.id)
        )
        return list(rows.scalars().all())


async def events_for_key(
    bootstrap: str, topic: str, key: str, *, expected: int = 1, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Envelopes (as JSON objects) on a topic whose message key is `key`."""
    import json

    from common_core.testing import read_topic

    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = await read_topic(bootstrap, topic, expected=10_000, timeout=1.5)
        found = [
            json.loads(r.value)
            for r in records
            if r.key is not None and r.key.decode() == key and r.value is not None
        ]
        if len(found) >= expected:
            break
    return found
