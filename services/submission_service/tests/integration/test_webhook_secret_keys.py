"""WEBHOOK_SECRET_KEYS: a deployment without it does not start; a rotation re-encrypts secrets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from submission_service.adapters.postgres import PostgresUnitOfWork
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.config import Settings
from submission_service.entrypoints.rotate_webhook_secrets import rotate
from submission_service.entrypoints.runtime import VERSIONS_DIR
from submission_service.testing.process import process_env, service_process

pytestmark = pytest.mark.integration

OLD_KEY, NEW_KEY, LOST_KEY = (Fernet.generate_key().decode() for _ in range(3))


async def _store_webhooks(database_url: str, key: str, count: int) -> dict[uuid.UUID, str]:
    """Webhooks registered while `key` was the first key: id -> plain secret."""
    engine = create_engine(database_url, pool_size=1)
    secrets = {uuid.uuid4(): uuid.uuid4().hex for _ in range(count)}
    try:
        async with create_session_factory(engine)() as session:
            assessment_id = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO assessments (id, definition_id, user_id, status)"
                    " VALUES (:id, 'intro-writing', 'learner', 'open')"
                ),
                {"id": assessment_id},
            )
            uow = PostgresUnitOfWork(session, secret_box=WebhookSecretBox([key]))
            for webhook_id, secret in secrets.items():
                await uow.webhooks.insert_webhook(
                    webhook_id, assessment_id, "https://example.org/hook", secret
                )
            await uow.commit()
    finally:
        await engine.dispose()
    return secrets


async def _stored_tokens(database_url: str) -> dict[uuid.UUID, str]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id, secret_ciphertext FROM webhooks"))
            return {r.id: r.secret_ciphertext for r in rows}
    finally:
        await engine.dispose()


async def test_old_secrets_move_to_the_new_key_and_unreadable_ones_are_counted(
    database_url: str,
) -> None:
    await run_migrations(database_url, [VERSIONS_DIR])
    secrets = await _store_webhooks(database_url, OLD_KEY, 3)
    lost = await _store_webhooks(database_url, LOST_KEY, 1)
    settings = Settings(database_url=database_url, webhook_secret_keys=f"{NEW_KEY},{OLD_KEY}")

    assert await rotate(settings) == (3, 1)
    assert await rotate(settings) == (0, 1)  # nothing left under the old key

    tokens = await _stored_tokens(database_url)
    new_only = WebhookSecretBox([NEW_KEY])
    assert {i: new_only.decrypt(tokens[i]) for i in secrets} == secrets
    [(lost_id, _)] = lost.items()
    assert WebhookSecretBox([NEW_KEY, OLD_KEY]).decrypt(tokens[lost_id]) is None


async def test_a_deployment_that_sets_jwt_secret_but_no_webhook_keys_refuses_to_start(
    database_url: str, kafka_bootstrap_servers: str, tmp_path: Path
) -> None:
    jwt_secret = f"deployment-secret-{uuid.uuid4().hex}"
    env = process_env(database_url, kafka_bootstrap_servers, JWT_SECRET=jwt_secret)
    del env["WEBHOOK_SECRET_KEYS"]

    with pytest.raises(AssertionError, match="exited during start-up") as caught:
        await _start_and_stop(env, tmp_path)

    assert "WEBHOOK_SECRET_KEYS must be set when JWT_SECRET is set" in str(caught.value)
    assert jwt_secret not in str(caught.value)


async def _start_and_stop(env: dict[str, str], log_dir: Path) -> None:
    """Start the service without the inherited WEBHOOK_SECRET_KEYS; stop it if it comes up."""
    async with service_process(env, log_dir, unset=("WEBHOOK_SECRET_KEYS",)):
        pass
