"""Contract-boundary limits: what every incoming text and JSON value may hold (docs/limits.md).

PostgreSQL cannot store a NUL character in `text` or `jsonb`, nor a lone UTF-16 surrogate (it is
not UTF-8). Both are legal in JSON, so every text field of every incoming payload and HTTP body
is a `StorableText` with a documented maximum length, and every free JSON object a
`StorableJson` with a maximum encoded size. A value that breaks a limit fails validation with
a message naming the limit (never echoing the value), so the sender learns which field was wrong.

The figures are documented in docs/limits.md; change both together.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# Identifiers: entity_ref, essay ids, question ids, module slugs, model names.
MAX_ID_CHARS = 200
# One essay's or answer's text: about 15,000 words, far beyond any school essay.
MAX_ESSAY_CHARS = 100_000
MAX_ANSWER_CHARS = 100_000
# Assignment prompts, question texts, judge rubrics, justifications and feedback.
MAX_INSTRUCTIONS_CHARS = 20_000
MAX_RUBRIC_CHARS = 20_000
MAX_FEEDBACK_CHARS = 20_000
# Essays (plus anchors) in one CJ request. The planner, the fit and one Kafka message all hold it.
MAX_ESSAYS_PER_REQUEST = 10_000
MAX_ANCHORS_PER_REQUEST = 200
# Free JSON objects (request_metadata, answer_metadata, a rubric object), encoded as UTF-8 JSON.
MAX_METADATA_BYTES = 16_384
MAX_RUBRIC_JSON_BYTES = 65_536
# Short codes: language tags, grades.
MAX_CODE_CHARS = 32
# Reference passages a rubric request may carry for retrieval-grounded scoring, and each one's text.
MAX_REFERENCE_PASSAGES = 8
MAX_PASSAGE_CHARS = 10_000

# The JSON-schema form of "no NUL character", so OpenAPI documents state what is accepted.
NO_NUL_PATTERN = "^[^\\u0000]*$"

_REPLACEMENT = "\ufffd"


def storable_text_problem(value: str) -> str | None:
    """Why PostgreSQL could not store `value` as text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid UTF-8)"
    return None


def _check_storable(value: str) -> str:
    problem = storable_text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def storable_json_problem(value: Any, max_bytes: int) -> str | None:
    """Why a JSON value cannot be stored as jsonb within `max_bytes`, or None when it can."""
    found = _json_text_problem(value, "")
    if found is not None:
        return found
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > max_bytes:
        return f"is {size} bytes of JSON, more than the limit of {max_bytes}"
    return None


def _json_text_problem(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        problem = storable_text_problem(value)
        return f"{path or 'value'} {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            key_problem = storable_text_problem(str(key))
            if key_problem is not None:
                return f"a key {key_problem}"
            found = _json_text_problem(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _json_text_problem(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _storable_json(max_bytes: int) -> AfterValidator:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        problem = storable_json_problem(value, max_bytes)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


def clean_text(value: str, max_chars: int) -> str:
    """Outgoing text made storable: NULs and lone surrogates replaced, cut to `max_chars`.

    For text this system writes from what others gave it (model answers, error messages), where
    rejecting would lose the answer; incoming payloads are validated, never cleaned.
    """
    if storable_text_problem(value) is not None:
        value = value.replace("\x00", _REPLACEMENT)
        value = "".join(_REPLACEMENT if "\ud800" <= c <= "\udfff" else c for c in value)
    return value[:max_chars]


def clean_json(value: Any, max_text_chars: int = MAX_FEEDBACK_CHARS) -> Any:
    """A JSON value with every string (and key) made storable by `clean_text`."""
    if isinstance(value, str):
        return clean_text(value, max_text_chars)
    if isinstance(value, dict):
        return {
            clean_text(str(k), MAX_ID_CHARS): clean_json(v, max_text_chars)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [clean_json(item, max_text_chars) for item in value]
    return value


# Annotations for a custom text field: `Annotated[str, Field(...), STORABLE, NO_NUL_SCHEMA]`.
STORABLE = AfterValidator(_check_storable)
NO_NUL_SCHEMA = Field(json_schema_extra={"pattern": NO_NUL_PATTERN})
_STORABLE, _NO_NUL = STORABLE, NO_NUL_SCHEMA

# Text types PostgreSQL can store, each with its maximum length (checked first: it is cheap and
# keeps a huge value from being scanned). Written out one by one so type checkers see them.
# Identifiers: 1..MAX_ID_CHARS storable characters.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS), _STORABLE, _NO_NUL]
EssayText = Annotated[str, Field(max_length=MAX_ESSAY_CHARS), _STORABLE, _NO_NUL]
AnswerText = Annotated[str, Field(max_length=MAX_ANSWER_CHARS), _STORABLE, _NO_NUL]
InstructionsText = Annotated[str, Field(max_length=MAX_INSTRUCTIONS_CHARS), _STORABLE, _NO_NUL]
RubricText = Annotated[str, Field(max_length=MAX_RUBRIC_CHARS), _STORABLE, _NO_NUL]
FeedbackText = Annotated[str, Field(max_length=MAX_FEEDBACK_CHARS), _STORABLE, _NO_NUL]
CodeText = Annotated[str, Field(max_length=MAX_CODE_CHARS), _STORABLE, _NO_NUL]
PassageText = Annotated[str, Field(max_length=MAX_PASSAGE_CHARS), _STORABLE, _NO_NUL]
# Short text of any kind: 0..MAX_ID_CHARS storable characters.
ShortText = Annotated[str, Field(max_length=MAX_ID_CHARS), _STORABLE, _NO_NUL]

# A Kafka topic name (Kafka's own rule: 1..249 of these characters).
TopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[a-zA-Z0-9._-]+$")]

# Free JSON objects: storable strings and keys, at most MAX_METADATA_BYTES encoded.
StorableJson = Annotated[dict[str, Any], _storable_json(MAX_METADATA_BYTES)]
RubricJson = Annotated[dict[str, Any], _storable_json(MAX_RUBRIC_JSON_BYTES)]

__all__ = [
    "MAX_ANCHORS_PER_REQUEST",
    "MAX_ANSWER_CHARS",
    "MAX_CODE_CHARS",
    "MAX_ESSAYS_PER_REQUEST",
    "MAX_ESSAY_CHARS",
    "MAX_FEEDBACK_CHARS",
    "MAX_ID_CHARS",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_METADATA_BYTES",
    "MAX_PASSAGE_CHARS",
    "MAX_REFERENCE_PASSAGES",
    "MAX_RUBRIC_CHARS",
    "MAX_RUBRIC_JSON_BYTES",
    "NO_NUL_PATTERN",
    "NO_NUL_SCHEMA",
    "STORABLE",
    "AnswerText",
    "CodeText",
    "EssayText",
    "FeedbackText",
    "Identifier",
    "InstructionsText",
    "PassageText",
    "RubricJson",
    "RubricText",
    "ShortText",
    "StorableJson",
    "TopicName",
    "clean_json",
    "clean_text",
    "storable_json_problem",
    "storable_text_problem",
]
