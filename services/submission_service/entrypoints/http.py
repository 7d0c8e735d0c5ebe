"""The Quart app: the submission HTTP API (SPEC §4), OpenAPI at /openapi.json, JSON errors."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID, uuid4

import structlog
from dishka import AsyncContainer, FromDishka
from pydantic import BaseModel, ValidationError
from quart import Quart, Request, Response, g, request
from quart.json.provider import JSONProvider
from quart_dishka import QuartDishka, inject
from quart_schema import (
    APIKeySecurityScheme,
    HttpSecurityScheme,
    Info,
    OpenAPIProvider,
    QuartSchema,
    RequestSchemaValidationError,
    document_request,
    document_response,
    hide,
    security_scheme,
    validate_headers,
    validate_querystring,
    validate_request,
    validate_response,
)
from quart_schema.conversion import model_schema
from quart_schema.typing import Model
from quart_schema.validation import QuerystringValidationError, RequestHeadersValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, UnsupportedMediaType
from werkzeug.routing import Rule

from common_core.runtime.error_text import describe_error
from common_core.runtime.http import (
    ReadinessCheck,
    error_body,
    register_database_error_handlers,
    register_operational_routes,
)
from submission_service.adapters.content import FileDefinitionCatalog
from submission_service.adapters.identity import JwtIdentityReader, parse_anonymous_token
from submission_service.application import assessments as assessment_cases
from submission_service.application import responses as response_cases
from submission_service.application import webhooks as webhook_cases
from submission_service.application.ports import (
    AssessmentStore,
    HostResolver,
    ResponseRecord,
    ResponseStore,
    ScoreRecord,
    UnitOfWork,
)
from submission_service.application.scoring import RubricPolicy
from submission_service.application.webhooks import WebhookPolicy
from submission_service.config import Settings
from submission_service.domain.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    SubmissionError,
    WebhookTargetRefusedError,
)
from submission_service.domain.identity import Identity
from submission_service.domain.webhooks import SIGNATURE_HEADER
from submission_service.entrypoints.http_schemas import (
    AssessmentOut,
    AuthenticateHeaders,
    ClaimIn,
    ClaimOut,
    CreateResponseIn,
    DefinitionListOut,
    DefinitionOut,
    ErrorOut,
    HealthOut,
    ModuleOut,
    OptionOut,
    QuestionOut,
    ReadinessOut,
    ResponseListOut,
    ResponseListQuery,
    ResponseOut,
    ResponseWithScoresOut,
    RetryAfterHeaders,
    ScoreOut,
    StartAssessmentIn,
    StatusOut,
    SubmitHeaders,
    SubmitIn,
    SubmitOut,
    UpdatedResponseOut,
    UpdateResponseIn,
    WebhookIn,
    WebhookOut,
    is_uuid,
)
from submission_service.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

_STATUS_BY_ERROR: tuple[tuple[type[SubmissionError], int], ...] = (
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    # A well-formed URL the SSRF policy will not call: refused, like a forbidden target.
    (WebhookTargetRefusedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (InvalidInputError, 400),
)


# Every 401 carries a Bearer challenge (RFC 9110 §11.6.1); a rejected token adds RFC 6750's code.
AUTH_REALM = "huleedu-submission"
_BEARER_ERRORS = {
    "invalid_token": "invalid_token",
    "token_expired": "invalid_token",
    "invalid_authorization_header": "invalid_request",
}
# Operations anyone may call; the document's default is a Bearer JWT or an anonymous token.
PUBLIC: list[dict[str, list[str]]] = []
USER_ONLY: list[dict[str, list[str]]] = [{"bearer": []}]
_OPTIONAL_BODY = "_submission_optional_body"
_LINKS = "_submission_links"
_STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_HEADER_NAMES = {"www_authenticate": "WWW-Authenticate"}
# 401 carries its challenge; 503 (the database is unavailable, common_core's handler) Retry-After.
_ERROR_HEADERS: dict[int, type[BaseModel]] = {401: AuthenticateHeaders, 503: RetryAfterHeaders}


def errors(*statuses: int) -> Callable[[F], F]:
    """Document the JSON error body for each status a route can answer with."""

    def decorator(func: F) -> F:
        for status in statuses:
            func = document_response(ErrorOut, status, _ERROR_HEADERS.get(status))(func)
        return func

    return decorator


def optional_body(func: F) -> F:
    """Mark a route whose documented request body may be left out."""
    setattr(func, _OPTIONAL_BODY, True)
    return func


def links(status: int, **operations: dict[str, str]) -> Callable[[F], F]:
    """Document OpenAPI links: which operations (by operationId) take ids from this response."""

    def decorator(func: F) -> F:
        setattr(func, _LINKS, {**getattr(func, _LINKS, {}), status: operations})
        return func

    return decorator


def authentication_challenge(exc: AuthenticationError) -> str:
    """The WWW-Authenticate value of a 401."""
    challenge = f'Bearer realm="{AUTH_REALM}"'
    error = _BEARER_ERRORS.get(exc.reason)
    return f'{challenge}, error="{error}"' if error else challenge


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is beyond the range of a double")
    return value


def loads_json(data: str | bytes) -> Any:
    """RFC 8259 JSON: no NaN or Infinity, no number beyond a double (jsonb stores neither)."""
    return json.loads(data, parse_constant=_not_json, parse_float=_finite_float)


class StrictJSONProvider(JSONProvider):
    """Another provider (quart-schema's) writes; request bodies are read by `loads_json`."""

    def __init__(self, app: Quart, writer: JSONProvider) -> None:
        super().__init__(app)
        self._writer = writer

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialize as the writer does."""
        return self._writer.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a request body; ValueError for anything RFC 8259 does not call JSON."""
        return loads_json(s)

    def response(self, *args: Any, **kwargs: Any) -> Any:
        """A JSON response as the writer makes it."""
        return self._writer.response(*args, **kwargs)


class SubmissionRequest(Request):
    """Malformed JSON is a specific client error, not a generic 400."""

    def on_json_loading_failed(self, error: Exception) -> Any:
        """Raise `invalid_json` instead of werkzeug's anonymous BadRequest."""
        raise InvalidInputError("the body is not valid JSON", reason="invalid_json") from error


class SubmissionOpenAPIProvider(OpenAPIProvider):
    """What quart-schema leaves out or misplaces, so the document states what the server checks.

    Path ids are UUIDs (routes accept any string so a bad id gets a specific 400); required
    headers, query parameters and bodies are marked required; response headers go where
    OpenAPI looks for them."""

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        """Mark request bodies required unless the route says otherwise; add its links."""
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        optional = getattr(func, _OPTIONAL_BODY, False)
        linked: dict[int, dict[str, dict[str, str]]] = getattr(func, _LINKS, {})
        for operations in paths.values():
            for method, operation in operations.items():
                changed = {**operation, "responses": dict(operation["responses"])}
                if "requestBody" in operation:
                    changed["requestBody"] = {**operation["requestBody"], "required": not optional}
                for status, targets in linked.items():
                    changed["responses"][status] = {
                        **changed["responses"][status],
                        "links": {
                            target: {"operationId": target, "parameters": parameters}
                            for target, parameters in targets.items()
                        },
                    }
                operations[method] = changed
        return paths, components

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        """Document `*_id` path parameters as UUID strings."""
        parameter = super().build_path_parameter(name, converter)
        if name.endswith("_id"):
            parameter["schema"] = {"type": "string", "format": "uuid"}
        return parameter

    def build_headers_parameters(
        self, model: type[Model]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Header parameters with their HTTP names, required ones marked."""
        parameters, definitions = super().build_headers_parameters(model)
        required = {_kebab(name) for name in self._required(model)}
        for parameter in parameters:
            parameter["required"] = parameter["name"] in required
            parameter["name"] = _http_header(parameter["name"].replace("-", "_"))
        return parameters, definitions

    def build_querystring_parameters(
        self, model: type[Model]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Query parameters, required ones marked."""
        parameters, definitions = super().build_querystring_parameters(model)
        required = self._required(model)
        for parameter in parameters:
            parameter["required"] = parameter["name"] in required
        return parameters, definitions

    def build_response_object(
        self, model: type[Model], headers_model: type[Model] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Response headers under `headers` (quart-schema nests them in `content`)."""
        response, definitions = super().build_response_object(model, headers_model)
        headers = response["content"].pop("headers", None)
        if headers_model is not None and headers is not None:
            required = {_kebab(name) for name in self._required(headers_model)}
            response["headers"] = {
                _http_header(name.replace("-", "_")): {**header, "required": name in required}
                for name, header in headers.items()
            }
        return response, definitions

    def _required(self, model: type[Model]) -> set[str]:
        preference = self._app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"]
        return set(model_schema(model, preference=preference).get("required", []))


def _correlation_id() -> UUID:
    cid: UUID = g.correlation_id
    return cid


def _identify(reader: JwtIdentityReader) -> Identity:
    return reader.identify(
        request.headers.get("Authorization"), request.headers.get("X-Anonymous-Token")
    )


def _path_uuid(value: str, field: str) -> UUID:
    if not is_uuid(value):
        raise InvalidInputError(f"{field} must be a UUID", reason="invalid_uuid", field=field)
    return UUID(value)


def _response_out(record: ResponseRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "user_id": record.identity.user_id,
        "anonymous_token": record.identity.anonymous_token,
        "question_id": record.question_id,
        "module_slug": record.module_slug,
        "learning_outcome_id": record.learning_outcome_id,
        "content_id": record.content_id,
        "answer_text": record.answer_text,
        "answer_metadata": record.answer_metadata,
        "created_at": record.created_at,
        "completed_at": record.completed_at,
        "locked": record.locked,
    }


def _score_out(score: ScoreRecord) -> ScoreOut:
    return ScoreOut(
        score_id=score.id,
        score_data=score.score_data,
        model_id=score.model_id,
        prompt_version=score.prompt_version,
        created_at=score.created_at,
    )


def _field_of(exc: ValidationError) -> tuple[str | None, str]:
    first = exc.errors(include_url=False)[0] if exc.error_count() else None
    if first is None:
        return None, "invalid input"
    loc = ".".join(str(p) for p in first["loc"]) or None
    return loc, f"{loc}: {first['msg']}" if loc else str(first["msg"])


def register_error_handlers(app: Quart) -> None:
    """One registry translating every failure to `{code, message, field?}`."""

    @app.errorhandler(SubmissionError)
    async def submission_error(exc: SubmissionError) -> tuple[Response, int]:
        status = next((s for t, s in _STATUS_BY_ERROR if isinstance(exc, t)), 400)
        response = Response(
            json.dumps(error_body(exc.reason, exc.message, exc.field)),
            status=status,
            content_type="application/json",
        )
        if isinstance(exc, AuthenticationError):
            response.headers["WWW-Authenticate"] = authentication_challenge(exc)
        return response, status

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> tuple[Response, int]:
        inner = exc.validation_error
        field, message = (
            _field_of(inner) if isinstance(inner, ValidationError) else (None, str(inner))
        )
        if isinstance(exc, RequestHeadersValidationError):
            code, status, field = "invalid_header", 400, _header_name(field)
        elif isinstance(exc, QuerystringValidationError):
            code, status = "invalid_query", 400
        else:
            code, status = "validation_error", 422
        return Response(
            json.dumps(error_body(code, message, field)),
            status=status,
            content_type="application/json",
        ), status

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = {
            400: "bad_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(status, (exc.name or "error").lower().replace(" ", "_"))
        message = exc.description or exc.name or "error"
        if status == 400 and "JSON" in message:
            code = "invalid_json"
        response = Response(
            json.dumps(error_body(code, message)), status=status, content_type="application/json"
        )
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> tuple[Response, int]:
        log.error("unhandled_error", error=describe_error(exc), path=request.path)
        return Response(
            json.dumps(error_body("internal_error", "internal error")),
            status=500,
            content_type="application/json",
        ), 500


def _header_name(field: str | None) -> str | None:
    return None if field is None else _http_header(field)


def _http_header(field: str) -> str:
    return _HEADER_NAMES.get(field) or "-".join(part.capitalize() for part in field.split("_"))


def _kebab(field: str) -> str:
    return field.replace("_", "-")


def _check_json_body(body: bytes) -> None:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the body is not UTF-8 JSON", reason="invalid_json") from exc


def _register_request_hooks(app: Quart) -> None:
    @app.before_request
    async def start() -> None:
        g.started = time.perf_counter()
        header = request.headers.get("X-Correlation-ID", "")
        try:
            g.correlation_id = UUID(header)
        except ValueError:
            g.correlation_id = uuid4()
        structlog.contextvars.bind_contextvars(correlation_id=str(g.correlation_id))
        if request.method in ("POST", "PATCH", "PUT"):
            body = await request.get_data()  # cached; too large raises 413
            if body.strip():
                _check_json_body(body if isinstance(body, bytes) else body.encode())

    @app.teardown_request
    async def unbind(_exc: BaseException | None) -> None:
        structlog.contextvars.unbind_contextvars("correlation_id")

    @app.after_request
    async def finish(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        # Any token is a method on the wire; only standard ones become label values.
        method = request.method if request.method in _STANDARD_METHODS else "other"
        HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        started = getattr(g, "started", None)
        if started is not None:
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
        if getattr(g, "correlation_id", None) is not None:
            response.headers["X-Correlation-ID"] = str(g.correlation_id)
        return response


def create_app(
    container: AsyncContainer,
    settings: Settings,
    readiness: Mapping[str, ReadinessCheck] | None = None,
) -> Quart:
    """Build the Quart app on a container; nothing connects here."""
    app = Quart("submission_service")
    app.request_class = SubmissionRequest
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["QUART_SCHEMA_CONVERSION_PREFERENCE"] = "pydantic"
    QuartSchema(
        app,
        info=Info(title="HuleEdu submission service", version="1.0.0"),
        security_schemes={
            "bearer": HttpSecurityScheme(scheme="bearer", bearer_format="JWT"),
            "anonymous": APIKeySecurityScheme(in_="header", name="X-Anonymous-Token"),
        },
        security=[{"bearer": []}, {"anonymous": []}],
        swagger_ui_path="/docs",
        openapi_provider_class=SubmissionOpenAPIProvider,
        redoc_ui_path=None,
        scalar_ui_path=None,
    )
    app.json = StrictJSONProvider(app, app.json)  # after QuartSchema, which sets its own
    register_error_handlers(app)
    register_database_error_handlers(app)
    _register_request_hooks(app)
    register_operational_routes(app, readiness or {})
    _document_operational_routes(app)
    _register_api(app)
    QuartDishka(app=app, container=container)
    return app


def _document_operational_routes(app: Quart) -> None:
    # The shared routes come from common_core; describe them here so /openapi.json is complete.
    document_response(HealthOut, 200)(app.view_functions["healthz"])
    document_response(ReadinessOut, 200)(app.view_functions["ready"])
    document_response(ReadinessOut, 503, RetryAfterHeaders)(app.view_functions["ready"])
    security_scheme(PUBLIC)(app.view_functions["healthz"])
    security_scheme(PUBLIC)(app.view_functions["ready"])
    hide(app.view_functions["metrics"])  # Prometheus text format, not JSON


def _register_api(app: Quart) -> None:  # noqa: PLR0915 - until the routes become blueprints
    @app.get("/api/assessments/definitions")
    @security_scheme(PUBLIC)
    @errors(500)
    @validate_response(DefinitionListOut, 200)
    @inject
    async def list_definitions(
        *,
        catalog: FromDishka[FileDefinitionCatalog],
    ) -> DefinitionListOut:
        """The shipped assessment definitions (without correct options)."""
        return DefinitionListOut(
            definitions=[
                DefinitionOut(
                    id=d.id,
                    title=d.title,
                    description=d.description,
                    modules=[
                        ModuleOut(
                            slug=m.slug,
                            title=m.title,
                            questions=[
                                QuestionOut(
                                    id=q.id,
                                    type=q.type.value,
                                    prompt=q.prompt,
                                    weight=q.weight,
                                    options=[OptionOut(id=o.id, text=o.text) for o in q.options],
                                    learning_outcome_id=q.learning_outcome_id,
                                )
                                for q in m.questions
                            ],
                        )
                        for m in d.modules
                    ],
                )
                for d in catalog.all()
            ]
        )

    @app.post("/api/assessments/responses")
    @errors(400, 401, 413, 415, 422, 503)
    @links(201, patch_update_response={"response_id": "$response.body#/id"})
    @validate_response(ResponseOut, 201)
    @validate_request(CreateResponseIn)
    @inject
    async def create_response(
        *,
        data: CreateResponseIn,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
    ) -> tuple[ResponseOut, int]:
        """Create an answer (never triggers scoring)."""
        identity = _identify(reader)
        async with transactions as store:
            record = await response_cases.create_response(
                store,
                identity,
                response_cases.NewResponse(
                    question_id=data.question_id,
                    module_slug=data.module_slug,
                    answer_text=data.answer_text,
                    learning_outcome_id=data.learning_outcome_id,
                    content_id=data.content_id,
                    answer_metadata=data.answer_metadata,
                    completed_at=data.completed_at,
                ),
            )
        return ResponseOut(**_response_out(record)), 201

    @app.patch("/api/assessments/responses/<response_id>")
    @errors(400, 401, 404, 409, 413, 415, 422, 503)
    @validate_response(UpdatedResponseOut, 200)
    @validate_request(UpdateResponseIn)
    @inject
    async def update_response(
        *,
        response_id: str,
        data: UpdateResponseIn,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
        catalog: FromDishka[FileDefinitionCatalog],
        policy: FromDishka[RubricPolicy],
    ) -> UpdatedResponseOut:
        """Update an answer; a body setting `completed_at` to a timestamp requests scoring."""
        identity = _identify(reader)
        rid = _path_uuid(response_id, "response_id")
        sent = data.model_fields_set
        values: dict[str, Any] = {
            name: getattr(data, name)
            for name in ("answer_text", "answer_metadata", "learning_outcome_id", "content_id")
            if name in sent
        }
        async with transactions as store:
            record, triggered = await response_cases.update_response(
                store,
                identity,
                rid,
                response_cases.ResponseChanges(
                    values=values,
                    completed_at_sent="completed_at" in sent,
                    completed_at=data.completed_at,
                ),
                catalog=catalog,
                policy=policy,
                correlation_id=_correlation_id(),
            )
        return UpdatedResponseOut(**_response_out(record), scoring_requested=triggered)

    @app.get("/api/assessments/responses")
    @errors(400, 401, 503)
    @validate_response(ResponseListOut, 200)
    @validate_querystring(ResponseListQuery)
    @inject
    async def list_responses(
        *,
        query_args: ResponseListQuery,
        reader: FromDishka[JwtIdentityReader],
        store: FromDishka[ResponseStore],
    ) -> ResponseListOut:
        """The caller's answers, newest first, with scores."""
        identity = _identify(reader)
        rows = await response_cases.list_responses(
            store,
            identity,
            module_slug=query_args.module_slug,
            question_id=query_args.question_id,
            limit=query_args.limit,
        )
        return ResponseListOut(
            responses=[
                ResponseWithScoresOut(
                    **_response_out(record), scores=[_score_out(s) for s in scores]
                )
                for record, scores in rows
            ]
        )

    @app.post("/api/assessments/claim")
    @security_scheme(USER_ONLY)
    @errors(400, 401, 413, 415, 422, 503)
    @validate_response(ClaimOut, 200)
    @validate_request(ClaimIn)
    @inject
    async def claim(
        *,
        data: ClaimIn,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
    ) -> ClaimOut:
        """Move an anonymous token's answers to the logged-in user."""
        authorization = request.headers.get("Authorization")
        if not authorization:
            raise AuthenticationError(
                "claiming needs a logged-in user (Authorization: Bearer <JWT>)",
                reason="user_required",
            )
        identity = Identity(user_id=reader.user_from_header(authorization))
        token = data.anonymous_token
        if token is None:
            header = request.headers.get("X-Anonymous-Token")
            if not header:
                raise InvalidInputError(
                    "name the anonymous token in the body or the X-Anonymous-Token header",
                    reason="anonymous_token_required",
                    field="anonymous_token",
                )
            token = parse_anonymous_token(header)
        async with transactions as store:
            claimed, skipped = await response_cases.claim_responses(store, identity, token)
        return ClaimOut(claimed=claimed, skipped=skipped)

    @app.post("/api/assessments")
    @errors(400, 401, 404, 413, 415, 422, 503)
    @links(
        201,
        post_submit={"assessment_id": "$response.body#/assessment_id"},
        get_status={"assessment_id": "$response.body#/assessment_id"},
        post_register_webhook={"assessment_id": "$response.body#/assessment_id"},
    )
    @validate_response(AssessmentOut, 201)
    @validate_request(StartAssessmentIn)
    @inject
    async def start_assessment(
        *,
        data: StartAssessmentIn,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
        catalog: FromDishka[FileDefinitionCatalog],
    ) -> tuple[AssessmentOut, int]:
        """Start an attempt at a shipped definition."""
        identity = _identify(reader)
        async with transactions as store:
            record = await assessment_cases.start_assessment(
                store, catalog, identity, data.definition_id
            )
        return AssessmentOut(
            assessment_id=record.id,
            definition_id=record.definition_id,
            status=record.status,
            created_at=record.created_at,
        ), 201

    @app.post("/api/assessments/<assessment_id>/submit")
    @errors(400, 401, 404, 409, 413, 415, 422, 503)
    @validate_response(SubmitOut, 202)
    @optional_body
    @document_request(SubmitIn)
    @validate_headers(SubmitHeaders)
    @inject
    async def submit(
        *,
        assessment_id: str,
        headers: SubmitHeaders,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
        catalog: FromDishka[FileDefinitionCatalog],
        policy: FromDishka[RubricPolicy],
    ) -> tuple[SubmitOut, int]:
        """Submit with an Idempotency-Key: rule results now, essay scoring queued."""
        identity = _identify(reader)
        aid = _path_uuid(assessment_id, "assessment_id")
        body = await _optional_json_body(SubmitIn)
        async with transactions as store:
            status, reply = await assessment_cases.submit_assessment(
                store,
                catalog,
                identity,
                aid,
                idempotency_key=headers.idempotency_key,
                request_body=body.model_dump(mode="json", exclude_none=True),
                policy=policy,
                correlation_id=_correlation_id(),
            )
        return SubmitOut.model_validate(reply), status

    @app.get("/api/assessments/<assessment_id>/status")
    @errors(400, 401, 404, 503)
    @validate_response(StatusOut, 200)
    @inject
    async def status(
        *,
        assessment_id: str,
        reader: FromDishka[JwtIdentityReader],
        store: FromDishka[AssessmentStore],
    ) -> StatusOut:
        """Per-stage progress, job states, result and webhook deliveries."""
        identity = _identify(reader)
        aid = _path_uuid(assessment_id, "assessment_id")
        return StatusOut.model_validate(
            await assessment_cases.assessment_status(store, identity, aid)
        )

    @app.post("/api/assessments/<assessment_id>/webhook")
    @errors(400, 401, 403, 404, 413, 415, 422, 503)
    @validate_response(WebhookOut, 201)
    @validate_request(WebhookIn)
    @inject
    async def register_webhook(
        *,
        assessment_id: str,
        data: WebhookIn,
        reader: FromDishka[JwtIdentityReader],
        transactions: FromDishka[UnitOfWork],
        resolver: FromDishka[HostResolver],
        policy: FromDishka[WebhookPolicy],
    ) -> tuple[WebhookOut, int]:
        """Register a completion callback URL (SSRF-guarded); returns the signing secret."""
        identity = _identify(reader)
        aid = _path_uuid(assessment_id, "assessment_id")
        async with transactions as store:
            webhook_id, secret = await webhook_cases.register_webhook(
                store, identity, aid, data.url, resolver=resolver, policy=policy
            )
        return WebhookOut(
            webhook_id=webhook_id, url=data.url, secret=secret, signature_header=SIGNATURE_HEADER
        ), 201


async def _optional_json_body(model: type[SubmitIn]) -> SubmitIn:
    raw = await request.get_data()
    if not raw or not raw.strip():
        return model()
    try:
        document = loads_json(raw)
    except ValueError as exc:
        raise InvalidInputError("the body is not valid JSON", reason="invalid_json") from exc
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from exc
