"""`python -m cj_assessment_service`: HTTP app, request and callback consumers, outbox relay and
batch monitor in one process; migrations and topics are ensured at start."""

from __future__ import annotations

import asyncio

from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.entrypoints.runtime import service_runtime
from common_core.runtime.blas_threads import limit_blas_threads
from common_core.runtime.logging import configure_logging
from common_core.runtime.service_process import run_service


async def main() -> None:
    """Run one service instance until SIGTERM."""
    settings = Settings()
    limit_blas_threads()
    configure_logging(
        SERVICE_NAME,
        settings.log_level,
        json=settings.log_json,
        repeat_interval_seconds=settings.log_repeat_interval_seconds,
    )
    async with service_runtime(settings) as runtime:
        await run_service(
            runtime.app,
            host=settings.http_host,
            port=settings.http_port,
            workers=runtime.workers(),
            stop_workers=runtime.stop,
        )


if __name__ == "__main__":
    asyncio.run(main())
