"""The OpenAPI documents of the three HTTP APIs, as each app serves them at `/openapi.json`.

Each app is built by its own `create_app` on an empty container: nothing connects, because no
route runs except the document's. The submission service describes itself with quart-schema;
the CJ and LLM provider apps do not mount quart-schema, so it is attached here to read their
routes, and an operation that declares no response gets a `default` one saying so (OpenAPI
requires at least one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dishka import make_async_container
from quart import Quart
from quart_schema import Info, OpenAPIProvider, QuartSchema
from werkzeug.routing import Rule

SERVICES = ("cj_assessment_service", "llm_provider_service", "submission_service")

UNDESCRIBED = {
    "description": "Not described by a schema; the service's README says what it returns. "
    "Errors are JSON `{code, message, field?}` (docs/contracts.md, error model)."
}


class RoutesOpenAPIProvider(OpenAPIProvider):
    """quart-schema's document of an app whose routes declare no schemas."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """Every operation with a `default` response when it documents none."""
        paths, components = super().build_paths(rule)
        for operations in paths.values():
            for operation in operations.values():
                if not operation["responses"]:
                    operation["responses"] = {"default": UNDESCRIBED}
        return paths, components


def _cj_app() -> Quart:
    from cj_assessment_service.entrypoints.http import create_app

    return _described(create_app(make_async_container(), {}), "HuleEdu CJ assessment service")


def _llm_app() -> Quart:
    from llm_provider_service.entrypoints.http import create_app

    return _described(create_app(make_async_container(), {}), "HuleEdu LLM provider service")


def _submission_app() -> Quart:
    from submission_service.config import Settings
    from submission_service.entrypoints.http import create_app

    # Defaults only (no environment): the document must not depend on where it is generated.
    return create_app(make_async_container(), Settings.model_construct())


def _described(app: Quart, title: str) -> Quart:
    QuartSchema(
        app,
        info=Info(title=title, version="1.0.0"),
        openapi_provider_class=RoutesOpenAPIProvider,
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    return app


APPS: dict[str, Callable[[], Quart]] = {
    "cj_assessment_service": _cj_app,
    "llm_provider_service": _llm_app,
    "submission_service": _submission_app,
}


async def _served_document(app: Quart) -> dict[str, Any]:
    response = await app.test_client().get("/openapi.json")
    if response.status_code != 200:
        raise RuntimeError(f"{app.name} answered /openapi.json with {response.status_code}")
    document: dict[str, Any] = await response.get_json()
    return document


def build_openapi(service: str) -> dict[str, Any]:
    """The OpenAPI document one service's app serves."""
    return asyncio.run(_served_document(APPS[service]()))
