"""The submission schema migrates up, down and up again; sub0002 encrypts stored webhook secrets."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.database import create_engine
from common_core.runtime.migrations import run_migrations
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.entrypoints.runtime import VERSIONS_DIR
from submission_service.testing.harness import TEST_WEBHOOK_SECRET_KEY

pytestmark = pytest.mark.integration


async def _webhook_columns(engine: AsyncEngine) -> dict[uuid.UUID, dict[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, to_jsonb(w) AS row FROM webhooks w"))
        return {r.id: {k: v for k, v in r.row.items() if k.startswith("secret")} for r in rows}


async def _plain_webhooks(engine: AsyncEngine, count: int) -> dict[uuid.UUID, str]:
    plain = {uuid.uuid4(): secrets.token_hex(32) for _ in range(count)}
    assessment_id = uuid.uuid4()
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO assessments (id, definition_id, user_id, status)"
                " VALUES (:id, 'intro-writing', 'learner', 'open')"
            ),
            {"id": assessment_id},
        )
        await connection.execute(
            text(
                "INSERT INTO webhooks (id, assessment_id, url, secret)"
                " VALUES (:id, :assessment_id, 'https://example.org/hook', :secret)"
            ),
            [{"id": i, "assessment_id": assessment_id, "secret": s} for i, s in plain.items()],
        )
    return plain


async def test_secrets_are_encrypted_on_upgrade_and_plain_again_on_downgrade(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The migration reads the keys as the service does: from WEBHOOK_SECRET_KEYS.
    monkeypatch.setenv("WEBHOOK_SECRET_KEYS", TEST_WEBHOOK_SECRET_KEY)
    box = WebhookSecretBox([TEST_WEBHOOK_SECRET_KEY])
    engine = create_engine(database_url)
    try:
        await run_migrations(database_url, [VERSIONS_DIR], target="sub0001")
        plain = await _plain_webhooks(engine, 3)

        await run_migrations(database_url, [VERSIONS_DIR], target="sub0002")
        encrypted = await _webhook_columns(engine)
        assert {i: set(columns) for i, columns in encrypted.items()} == {
            i: {"secret_ciphertext"} for i in plain
        }
        for webhook_id, secret in plain.items():
            token = encrypted[webhook_id]["secret_ciphertext"]
            assert secret not in token
            assert box.decrypt(token) == secret

        await run_migrations(database_url, [VERSIONS_DIR], target="sub0001", downgrade=True)
        assert await _webhook_columns(engine) == {i: {"secret": s} for i, s in plain.items()}

        await run_migrations(database_url, [VERSIONS_DIR], target="base", downgrade=True)
        await run_migrations(database_url, [VERSIONS_DIR])
        await run_migrations(database_url, [VERSIONS_DIR])  # idempotent
        async with engine.connect() as connection:
            columns = set(
                (
                    await connection.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns"
                            " WHERE table_name = 'webhooks'"
                        )
                    )
                ).scalars()
            )
        assert "secret" not in columns
        assert "secret_ciphertext" in columns
    finally:
        await engine.dispose()
