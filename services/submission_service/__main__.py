"""`python -m submission_service`: the HTTP API plus its Kafka and webhook workers."""

from __future__ import annotations

import asyncio

import structlog

from common_core.runtime.logging import configure_logging
from common_core.runtime.service_process import run_service
from submission_service.config import SERVICE_NAME, Settings
from submission_service.entrypoints.runtime import build_runtime, prepare_infrastructure

log = structlog.get_logger(__name__)


async def main() -> None:
    """Migrate, create topics, then serve until SIGTERM."""
    settings = Settings()
    configure_logging(
        SERVICE_NAME,
        settings.log_level,
        json=settings.log_json,
        repeat_interval_seconds=settings.log_repeat_interval_seconds,
    )
    if settings.uses_dev_jwt_secret:
        log.warning(
            "insecure_dev_jwt_secret",
            message="JWT_SECRET is the development default; set JWT_SECRET in any real deployment",
        )
    await prepare_infrastructure(settings)
    runtime = await build_runtime(settings)
    try:
        await run_service(
            runtime.app,
            host=settings.http_host,
            port=settings.http_port,
            workers=runtime.workers(),
            stop_workers=runtime.stop,
        )
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
