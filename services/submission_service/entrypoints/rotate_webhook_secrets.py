"""`python -m submission_service.entrypoints.rotate_webhook_secrets`: finish a key rotation.

Re-encrypts every stored webhook secret under the first key of WEBHOOK_SECRET_KEYS, so the keys
after it can then be dropped from the setting. Exits 1 when some secret decrypts with no key.
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.logging import configure_logging
from submission_service.adapters.postgres_webhooks import reencrypt_webhook_secrets
from submission_service.adapters.webhook_secrets import WebhookSecretBox
from submission_service.config import SERVICE_NAME, Settings

log = structlog.get_logger(__name__)


async def rotate(settings: Settings) -> tuple[int, int]:
    """Re-encrypt the stored secrets; (re-encrypted, unreadable)."""
    box = WebhookSecretBox(settings.webhook_secret_key_ring())
    engine = create_engine(settings.service_database_url, pool_size=1, tls=settings.database_tls)
    try:
        return await reencrypt_webhook_secrets(create_session_factory(engine), box)
    finally:
        await engine.dispose()


def main() -> int:
    """Run the rotation with the service's settings; the exit status."""
    settings = Settings()
    configure_logging(SERVICE_NAME, settings.log_level, json=settings.log_json)
    reencrypted, unreadable = asyncio.run(rotate(settings))
    log.info("webhook_secrets_rotated", reencrypted=reencrypted, unreadable=unreadable)
    return 1 if unreadable else 0


if __name__ == "__main__":
    sys.exit(main())
