"""The HTTP app: health, readiness, metrics, the providers overview, the price table and the
operators' erasure of a CJ batch's waiting requests, described at `/openapi.json`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from dishka import AsyncContainer, FromDishka
from quart import Quart
from quart_dishka import QuartDishka, inject
from quart_schema import tag, validate_response

from common_core.runtime.http import (
    ReadinessCheck,
    error_body,
    errors,
    mount_openapi,
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from common_core.runtime.http_auth import ApiScopes, TokenVerifier, authenticated, protect_api
from llm_provider_service.application.data_lifecycle import erase_batch_requests
from llm_provider_service.application.panel import JudgePanel
from llm_provider_service.application.ports import Transactions
from llm_provider_service.config import SERVICE_NAME, Settings
from llm_provider_service.domain.pricing import PriceTable
from llm_provider_service.entrypoints.http_schemas import ProvidersOut, RequestsErasedOut

LLM_SCOPES = ApiScopes(
    read="llm:read", write="llm:read", by_prefix={"/api/v1/erasures/": "llm:erase"}
)
"""The API reads, but for the operators' erasures (`llm:erase`); another write method is
refused (405) once the token is checked."""


def create_app(
    container: AsyncContainer,
    readiness: Mapping[str, ReadinessCheck],
    *,
    verifier: TokenVerifier | None = None,
) -> Quart:
    """Build the Quart app on a container (nothing connects until a request needs it);
    `/healthz/ready` runs the `readiness` checks (the kernel's standard ones: database, Kafka);
    `verifier` checks the bearer tokens of `/api` (scope `llm:read`, `llm:erase` for the
    erasures; None: open)."""
    app = Quart("llm_provider_service")
    mount_openapi(
        app,
        "HuleEdu LLM provider service",
        bearer_auth=True,
    )
    protect_api(app, verifier, LLM_SCOPES, realm=SERVICE_NAME)
    register_operational_routes(app, readiness)
    register_http_error_handlers(app)
    register_database_error_handlers(app)

    @app.get("/api/v1/providers")
    @validate_response(ProvidersOut)
    @tag(["providers"])
    @authenticated
    @inject
    async def providers(panel: FromDishka[JudgePanel]) -> tuple[dict[str, Any], int]:
        """Configured providers, the default, circuit states and limits (never keys).

        Scope: `llm:read`."""
        return panel.describe(), 200

    @app.get("/api/v1/prices")
    @validate_response(PriceTable)
    @tag(["providers"])
    @authenticated
    @inject
    async def prices(settings: FromDishka[Settings]) -> tuple[dict[str, Any], int]:
        """The dated price table the cost estimates come from (date, sources, prices).

        Scope: `llm:read`."""
        return settings.price_table.model_dump(mode="json"), 200

    @app.post("/api/v1/erasures/batches/<batch_id>")
    @validate_response(RequestsErasedOut)
    @errors(400, 503)
    @tag(["erasures"])
    @authenticated
    @inject
    async def erase_batch(
        batch_id: str, transactions: FromDishka[Transactions]
    ) -> tuple[dict[str, Any], int]:
        """Delete a CJ batch's batch-mode requests that no provider has yet (they carry essay
        texts); those already at a provider are counted and cleared once answered. Idempotent.
        A batch id that is not a UUID is a 400 naming `batch_id`.

        Scope: `llm:erase`."""
        try:
            batch = UUID(batch_id)
        except ValueError:
            return error_body("invalid_parameter", "batch_id is not a UUID", "batch_id"), 400
        erased = await erase_batch_requests(transactions, batch)
        return {
            "batch_id": str(batch),
            "waiting_requests": erased.waiting_requests,
            "in_flight_requests": erased.in_flight_requests,
        }, 200

    QuartDishka(app=app, container=container)
    return app
