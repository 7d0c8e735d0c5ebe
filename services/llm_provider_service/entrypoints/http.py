"""The HTTP app: health, readiness, metrics, the providers overview and the price table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dishka import AsyncContainer, FromDishka
from quart import Quart
from quart_dishka import QuartDishka, inject

from common_core.runtime.http import (
    ReadinessCheck,
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from llm_provider_service.application.panel import JudgePanel
from llm_provider_service.config import Settings


def create_app(container: AsyncContainer, readiness: Mapping[str, ReadinessCheck]) -> Quart:
    """Build the Quart app on a container (nothing connects until a request needs it);
    `/healthz/ready` runs the `readiness` checks (the kernel's standard ones: database, Kafka)."""
    app = Quart("llm_provider_service")
    register_operational_routes(app, readiness)
    register_http_error_handlers(app)
    register_database_error_handlers(app)

    @app.get("/api/v1/providers")
    @inject
    async def providers(panel: FromDishka[JudgePanel]) -> tuple[dict[str, Any], int]:
        """Configured providers, the default, circuit states and limits (never keys)."""
        return panel.describe(), 200

    @app.get("/api/v1/prices")
    @inject
    async def prices(settings: FromDishka[Settings]) -> tuple[dict[str, Any], int]:
        """The dated price table the cost estimates come from (date, sources, prices)."""
        return settings.price_table.model_dump(mode="json"), 200

    QuartDishka(app=app, container=container)
    return app
