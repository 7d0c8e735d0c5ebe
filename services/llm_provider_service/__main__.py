"""`python -m llm_provider_service`: the HTTP app and the Kafka worker in one process."""

from __future__ import annotations

import asyncio

from common_core.runtime.logging import configure_logging
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.entrypoints.runtime import run


async def main() -> None:
    """Configure logging, then provision topics, wire the container, serve until SIGTERM."""
    settings = Settings()
    configure_logging(
        SERVICE_NAME,
        settings.log_level,
        json=settings.log_json,
        repeat_interval_seconds=settings.log_repeat_interval_seconds,
    )
    await run(settings)


if __name__ == "__main__":
    asyncio.run(main())
