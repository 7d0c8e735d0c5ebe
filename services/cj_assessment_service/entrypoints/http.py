"""The Quart app: operational routes, error handlers and the batch API (`http_batches.py`)."""

from __future__ import annotations

from collections.abc import Mapping

from dishka import AsyncContainer
from quart import Quart
from quart_dishka import QuartDishka

from cj_assessment_service.entrypoints.http_batches import batches
from cj_assessment_service.entrypoints.http_errors import register_cj_error_handler
from common_core.runtime.http import (
    ReadinessCheck,
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)


def create_app(container: AsyncContainer, readiness: Mapping[str, ReadinessCheck]) -> Quart:
    """Build the Quart app wired to the container."""
    app = Quart("cj_assessment_service")
    register_operational_routes(app, readiness)
    register_http_error_handlers(app)
    register_database_error_handlers(app)
    register_cj_error_handler(app)
    app.register_blueprint(batches)
    QuartDishka(app=app, container=container)
    return app
