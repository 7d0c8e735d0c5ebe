"""The Quart app: operational routes, error handlers, the batch API (`http_batches.py`), the
essay-set upload (`http_essay_sets.py`), the operators' erasures (`http_erasures.py`) and the
organiser's judge API (`http_judges.py`), described at `/openapi.json` (`http_schemas.py`); the
human judges' HTML page (`http_judging.py`, outside `/api`: its signed link is the credential)."""

from __future__ import annotations

from collections.abc import Mapping

from dishka import AsyncContainer
from quart import Quart
from quart_dishka import QuartDishka

from cj_assessment_service.config import SERVICE_NAME
from cj_assessment_service.entrypoints.http_batches import batches
from cj_assessment_service.entrypoints.http_erasures import ERASURES_PREFIX, erasures
from cj_assessment_service.entrypoints.http_errors import register_cj_error_handler
from cj_assessment_service.entrypoints.http_essay_sets import essay_sets
from cj_assessment_service.entrypoints.http_judges import judges
from cj_assessment_service.entrypoints.http_judging import judging
from cj_assessment_service.entrypoints.http_schemas import CJOpenAPIProvider
from common_core.runtime.http import (
    ReadinessCheck,
    mount_openapi,
    register_database_error_handlers,
    register_http_error_handlers,
    register_operational_routes,
)
from common_core.runtime.http_auth import ApiScopes, TokenVerifier, protect_api

CJ_SCOPES = ApiScopes(read="cj:read", write="cj:write", by_prefix={ERASURES_PREFIX: "cj:erase"})


def create_app(
    container: AsyncContainer,
    readiness: Mapping[str, ReadinessCheck],
    *,
    max_body_bytes: int | None = None,
    verifier: TokenVerifier | None = None,
) -> Quart:
    """Build the Quart app wired to the container; `max_body_bytes` bounds request bodies (the
    essay-set upload is the only large one; Quart's default is 16 MiB); `verifier` checks the
    bearer tokens of `/api` (`cj:read` for reads, `cj:write` for the rest, `cj:erase` for the
    erasures; None: open)."""
    app = Quart("cj_assessment_service")
    if max_body_bytes is not None:
        app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    mount_openapi(
        app,
        "HuleEdu CJ assessment service",
        CJOpenAPIProvider,
        bearer_auth=True,
    )
    protect_api(app, verifier, CJ_SCOPES, realm=SERVICE_NAME)
    register_operational_routes(app, readiness)
    register_http_error_handlers(app)
    register_database_error_handlers(app)
    register_cj_error_handler(app)
    app.register_blueprint(batches)
    app.register_blueprint(essay_sets)
    app.register_blueprint(erasures)
    app.register_blueprint(judges)
    app.register_blueprint(judging)
    QuartDishka(app=app, container=container)
    return app
