"""Typed HTTP request and response models (they generate the OpenAPI document).

Every text a request carries is one of `common_core.limits`' storable types (docs/limits.md): a NUL
character, a lone surrogate or an oversized value is refused naming the field, and the document
states the same limits. Where the server reads more than plain JSON Schema keywords say (UUIDs,
timestamps, webhook URLs), the pattern in the document is the very one the server checks, so a
request fits the document exactly when the server accepts its shape.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypeAliasType

from common_core.limits import (
    MAX_METADATA_BYTES,
    NO_NUL_PATTERN,
    AnswerText,
    Identifier,
    ShortText,
    StorableJson,
)
from submission_service.domain.completion import normalise_completed_at

# A UUID as JSON Schema's `format: uuid` means it: 8-4-4-4-12 hexadecimal digits, nothing else
# (no braces, no `urn:uuid:` prefix, no undashed form, which Python's UUID() would also take).
UUID_PATTERN = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
_UUID = re.compile(UUID_PATTERN)

# RFC 3339 timestamps as the server reads them: upper-case `T` and `Z`, no leap second, years
# 0002-9998 so that any offset stays within what a datetime can hold.
_YEAR = (
    "(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
)
_HOUR = "(?:[01][0-9]|2[0-3])"
TIMESTAMP_PATTERN = (
    f"^{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    f"T{_HOUR}:[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:Z|[+-]{_HOUR}:[0-5][0-9])$"
)
# What clears `completed_at`: empty, "null" or "none" in any case, JSON whitespace around.
EMPTY_TIMESTAMP_PATTERN = "^[ \\t\\n\\r]*(?:[Nn][Uu][Ll][Ll]|[Nn][Oo][Nn][Ee])?[ \\t\\n\\r]*$"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_EMPTY_TIMESTAMP = re.compile(EMPTY_TIMESTAMP_PATTERN)

# Webhook URLs: http(s), a host name (dot-separated labels of 1-63 letters, digits, `_` or `-`,
# at most 254 characters: the second pattern), an IPv4 or a bracketed IPv6 address (RFC 3986),
# a port 1-65535 without leading zeros, no credentials, and printable ASCII after the host.
_LABEL = "[A-Za-z0-9_-]{1,63}"
_H16 = "[0-9A-Fa-f]{1,4}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_LS32 = f"(?:{_H16}:{_H16}|{_OCTET}(?:\\.{_OCTET}){{3}})"
_IPV6 = "|".join(
    (
        f"(?:{_H16}:){{6}}{_LS32}",
        f"::(?:{_H16}:){{5}}{_LS32}",
        f"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        f"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        f"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        f"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        f"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        f"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        f"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    )
)
_PORT = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
WEBHOOK_URL_PATTERN = (
    f"^[Hh][Tt][Tt][Pp][Ss]?://(?:(?:{_LABEL}\\.)*{_LABEL}\\.?|\\[(?:{_IPV6})\\])"
    f"(?::{_PORT})?(?:[/?#][!-~]*)?$"
)
WEBHOOK_HOST_LENGTH_PATTERN = (
    "^[^:]*://(?:[^/?#:\\[]{1,254}|\\[[^\\]]*\\])(?::[0-9]+)?(?:[/?#][!-~]*)?$"
)
_WEBHOOK_URL = (re.compile(WEBHOOK_URL_PATTERN), re.compile(WEBHOOK_HOST_LENGTH_PATTERN))
MAX_WEBHOOK_URL_CHARS = 2000


def is_uuid(value: str) -> bool:
    """True for a UUID in its 8-4-4-4-12 hexadecimal form (what `format: uuid` means)."""
    return _UUID.fullmatch(value) is not None


def _uuid_text(value: object) -> object:
    if isinstance(value, str) and not is_uuid(value):
        raise ValueError("must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return value


def _read_completed_at(value: object) -> datetime | None:
    if isinstance(value, str) and not (
        _EMPTY_TIMESTAMP.fullmatch(value) or _TIMESTAMP.fullmatch(value)
    ):
        raise ValueError('must be an RFC 3339 timestamp, empty, null or "null"')
    return normalise_completed_at(value)


def _check_webhook_url(value: str) -> str:
    if not all(pattern.fullmatch(value) for pattern in _WEBHOOK_URL):
        raise ValueError(
            "must be an absolute http(s) URL: a host name, IPv4 or [IPv6] address, "
            "a port from 1 to 65535, no credentials, printable ASCII only"
        )
    return value


class _PropertyNames:
    """Document a dict with constrained keys as `propertyNames` + `additionalProperties`.

    pydantic writes `patternProperties`, which lets keys outside the pattern through."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        (pattern, values), *_ = handler(schema)["patternProperties"].items()
        return {
            "type": "object",
            "propertyNames": {"pattern": pattern},
            "additionalProperties": values,
        }


class _DocumentedAs:
    """Document a field as another type (validation stays with the field's own type)."""

    def __init__(self, documented: Any) -> None:
        self._schema = TypeAdapter(documented).core_schema

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self._schema)


_NoNulText = Annotated[str, Field(pattern=NO_NUL_PATTERN)]
# Any JSON value PostgreSQL can store (recursive; its own OpenAPI component). Documentation only:
# `StorableJson` validates, so numbers keep their JSON type and the size limit is checked.
StorableJsonValue = TypeAliasType(
    "StorableJsonValue",
    "_NoNulText | float | bool | list[StorableJsonValue] | _StorableJsonObject | None",
)
_StorableJsonObject = Annotated[dict[_NoNulText, StorableJsonValue], _PropertyNames()]

Uuid = Annotated[UUID, BeforeValidator(_uuid_text)]
CompletedAt = Annotated[
    datetime | None,
    BeforeValidator(_read_completed_at),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
                {"type": "string", "pattern": EMPTY_TIMESTAMP_PATTERN},
                {"type": "null"},
            ],
            "description": (
                'An RFC 3339 timestamp; empty, null, "null" or "none" clear it '
                "(naive timestamps are not accepted)."
            ),
        }
    ),
]
Metadata = Annotated[
    StorableJson,
    _DocumentedAs(_StorableJsonObject),
    Field(
        description=(
            f"A JSON object of at most {MAX_METADATA_BYTES} bytes as UTF-8 JSON, "
            "with no NUL character in any string or key."
        )
    ),
]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_WEBHOOK_URL_CHARS,
        json_schema_extra={
            "allOf": [{"pattern": WEBHOOK_URL_PATTERN}, {"pattern": WEBHOOK_HOST_LENGTH_PATTERN}]
        },
    ),
    AfterValidator(_check_webhook_url),
]
IdempotencyKey = Annotated[Identifier, Field(description="Replays of one submission share it.")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthenticateHeaders(BaseModel):
    """The challenge every 401 carries."""

    www_authenticate: str = Field(
        description='`Bearer realm="huleedu-submission"`, with `error` when a token was refused.'
    )


class CreateResponseIn(_Request):
    """A new answer. `completed_at` may be stored but a POST never triggers scoring."""

    question_id: Identifier
    module_slug: Identifier
    answer_text: AnswerText = ""
    learning_outcome_id: ShortText | None = None
    content_id: ShortText | None = None
    answer_metadata: Metadata = Field(default_factory=dict)
    completed_at: CompletedAt = None


class UpdateResponseIn(_Request):
    """A partial update. Only `completed_at` set to a timestamp triggers scoring; empty,
    `null` and the string "null" clear it without triggering."""

    answer_text: AnswerText = ""
    learning_outcome_id: ShortText | None = None
    content_id: ShortText | None = None
    answer_metadata: Metadata = Field(default_factory=dict)
    completed_at: CompletedAt = None


class ScoreOut(_Reply):
    """A rubric score of an answer."""

    score_id: UUID
    score_data: dict[str, Any]
    model_id: str
    prompt_version: str
    created_at: datetime


class ResponseOut(_Reply):
    """An answer as stored (never with scores in create/update answers)."""

    id: UUID
    user_id: str | None
    anonymous_token: UUID | None
    question_id: str
    module_slug: str
    learning_outcome_id: str | None
    content_id: str | None
    answer_text: str
    answer_metadata: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None
    locked: bool


class UpdatedResponseOut(ResponseOut):
    """An updated answer and whether the update requested scoring (scored later)."""

    scoring_requested: bool


class ResponseWithScoresOut(ResponseOut):
    """An answer with its scores, newest first."""

    scores: list[ScoreOut]


class ResponseListOut(_Reply):
    """The caller's answers, newest first."""

    responses: list[ResponseWithScoresOut]


class ResponseListQuery(_Request):
    """Filters of the listing (unknown parameters, e.g. cache busters, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    module_slug: Identifier | None = None
    question_id: Identifier | None = None
    limit: int = Field(default=100, ge=1, le=500)


class ClaimIn(_Request):
    """Which anonymous token to claim (else the X-Anonymous-Token header is used)."""

    anonymous_token: Uuid | None = None


class ClaimOut(_Reply):
    """How many answers moved to the user and how many stayed (question already answered)."""

    claimed: int
    skipped: int


class OptionOut(_Reply):
    """A selectable option."""

    id: str
    text: str


class QuestionOut(_Reply):
    """A question as shown to learners (no correct option)."""

    id: str
    type: str
    prompt: str
    weight: float
    options: list[OptionOut]
    learning_outcome_id: str | None


class ModuleOut(_Reply):
    """A module of a definition."""

    slug: str
    title: str
    questions: list[QuestionOut]


class DefinitionOut(_Reply):
    """A shipped assessment definition."""

    id: str
    title: str
    description: str
    modules: list[ModuleOut]


class DefinitionListOut(_Reply):
    """Every shipped definition."""

    definitions: list[DefinitionOut]


class StartAssessmentIn(_Request):
    """Start an attempt at a shipped definition."""

    definition_id: Identifier


class AssessmentOut(_Reply):
    """A started attempt; its id is the `{id}` of submit, status and webhook."""

    assessment_id: UUID
    definition_id: str
    status: str
    created_at: datetime


class SubmitIn(_Request):
    """Optional submit body; it is part of the idempotency fingerprint."""

    client_reference: ShortText | None = None


class SubmitHeaders(BaseModel):
    """The idempotency key every submit needs."""

    idempotency_key: IdempotencyKey


class RuleResultOut(_Reply):
    """An inline-scored question (theoretical or profile)."""

    module_slug: str
    question_id: str
    score_type: str
    status: str
    score: float | None
    max_score: float
    detail: dict[str, Any]


class EssayJobOut(_Reply):
    """An essay scoring job: `gpt`, `rag` (`skipped` without reference material) or `fusion`."""

    job_id: UUID
    job_type: str
    module_slug: str
    question_id: str
    status: str


class QuestionRefOut(_Reply):
    """A question by module and id."""

    module_slug: str
    question_id: str


class SubmitOut(_Reply):
    """The submission's immediate answer: rule results now, essay jobs queued."""

    assessment_id: UUID
    definition_id: str
    status: str
    submitted_at: datetime
    degraded: bool
    rule_results: list[RuleResultOut]
    essay_jobs: list[EssayJobOut]
    missing: list[QuestionRefOut]


class StageOut(_Reply):
    """One stage's progress and its weight in the overall progress."""

    name: str
    weight: float
    status: str
    done: int
    total: int
    skipped: int


class JobOut(_Reply):
    """A scoring job's state (`queued → in_progress → completed | failed`, or `skipped`)."""

    job_id: UUID
    job_type: str
    module_slug: str
    question_id: str
    status: str
    error: dict[str, Any] | None
    note: str | None
    result: dict[str, Any] | None


class DeliveryAttemptOut(_Reply):
    """One webhook delivery attempt."""

    attempt: int
    attempted_at: datetime
    succeeded: bool
    http_status: int | None
    error: str | None


class DeliveryOut(_Reply):
    """A webhook delivery and its attempts."""

    delivery_id: UUID
    event: str
    status: str
    attempts: list[DeliveryAttemptOut]


class WebhookStatusOut(_Reply):
    """A registered webhook with its deliveries."""

    webhook_id: UUID
    url: str
    deliveries: list[DeliveryOut]


class StatusOut(_Reply):
    """Where an assessment stands."""

    assessment_id: UUID
    definition_id: str
    status: str
    created_at: datetime
    submitted_at: datetime | None
    completed_at: datetime | None
    progress: float
    stages: list[StageOut]
    jobs: list[JobOut]
    result: dict[str, Any] | None
    webhooks: list[WebhookStatusOut]


class WebhookIn(_Request):
    """A callback URL for the assessment's completion."""

    url: WebhookUrl


class WebhookOut(_Reply):
    """A registered webhook; the secret signs every delivery and is shown only here."""

    webhook_id: UUID
    url: str
    secret: str
    signature_header: str


class UserErasureIn(_Request):
    """Erase the answers of a logged-in learner, by the `sub` of their tokens."""

    user_id: Identifier


class TokenErasureIn(_Request):
    """Erase the answers of an anonymous learner, by their token."""

    anonymous_token: Uuid


class ErasureIn(RootModel[UserErasureIn | TokenErasureIn]):
    """Whose data to erase: exactly one of `user_id` or `anonymous_token`."""


class ErasureOut(_Reply):
    """What an erasure removed, by kind (zero counts included), and its audit record."""

    subject: Literal["user_id", "anonymous_token"]
    erased: dict[str, int]
    already_erased: bool = Field(
        description="true when nothing was left to remove and an earlier erasure is on record"
    )
    audit_id: UUID
