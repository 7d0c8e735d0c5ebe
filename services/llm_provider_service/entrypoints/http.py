"""The HTTP app: health, readiness, metrics and the providers overview."""

from __future__ import annotations

from typing import Any

from dishka import AsyncContainer, FromDishka
from quart import Quart
from quart_dishka import QuartDishka, inject

from common_core.runtime.http import (
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from llm_provider_service.application.panel import JudgePanel
from llm_provider_service.entrypoints.consumers import RequestWorker


def create_app(container: AsyncContainer) -> Quart:
    """Build the Quart app on a container (nothing connects until a request needs it)."""
    app = Quart("llm_provider_service")

    async def kafka_ready() -> None:
        worker = await container.get(RequestWorker)
        await worker.check_kafka()

    register_operational_routes(app, {"kafka": kafka_ready})
    register_http_error_handlers(app)
    register_database_error_handlers(app)

    @app.get("/api/v1/providers")
    @inject
    async def providers(panel: FromDishka[JudgePanel]) -> tuple[dict[str, Any], int]:
        """Configured providers, the default, circuit states and limits (never keys)."""
        return panel.describe(), 200

    QuartDishka(app=app, container=container)
    return app
