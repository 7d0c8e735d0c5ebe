"""The OpenAPI documents of the three HTTP APIs, as each app serves them at `/openapi.json`.

Each app is built by its own `create_app` on an empty container: nothing connects, because no
route runs except the document's. Every app describes itself with quart-schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dishka import make_async_container
from quart import Quart

SERVICES = ("cj_assessment_service", "llm_provider_service", "submission_service")


def _cj_app() -> Quart:
    from cj_assessment_service.entrypoints.http import create_app

    return create_app(make_async_container(), {})


def _llm_app() -> Quart:
    from llm_provider_service.entrypoints.http import create_app

    return create_app(make_async_container(), {})


def _submission_app() -> Quart:
    from submission_service.config import Settings
    from submission_service.entrypoints.http import create_app

    # Defaults only (no environment): the document must not depend on where it is generated.
    return create_app(make_async_container(), Settings.model_construct())


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
