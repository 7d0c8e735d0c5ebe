"""The answers a model must give (JSON schemas) and their strict parsing."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common_core.events.llm import ComparisonWinner
from common_core.limits import clean_text
from llm_provider_service.domain.errors import MalformedAnswerError
from llm_provider_service.domain.verdict_probability import VERDICT_LETTERS

_MAX_ANSWER_TEXT = 4000


def _storable(value: object) -> object:
    """A model's free text made storable (a NUL or lone surrogate replaced, never rejected: the
    verdict is still good)."""
    return clean_text(value, _MAX_ANSWER_TEXT) if isinstance(value, str) else value


def _verdict(value: object) -> object:
    """The verdict letter of prompt comparison_v2 ("A"/"B") as the winner; comparison_v1's
    "essay_a"/"essay_b" still parse (a batch submitted before an upgrade, a server that ignores
    the schema)."""
    return VERDICT_LETTERS.get(value, value) if isinstance(value, str) else value


class ComparisonAnswer(BaseModel):
    """A model's verdict on a pair (only what the model wrote: a probability read from the
    verdict token's log-probabilities is the judge's, never the answer text's)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    winner: ComparisonWinner
    justification: str = Field(min_length=1, max_length=_MAX_ANSWER_TEXT)
    confidence: int = Field(ge=1, le=5)

    _winner_letter = field_validator("winner", mode="before")(_verdict)
    _clean_justification = field_validator("justification", mode="before")(_storable)


class RubricDimensionScores(BaseModel):
    """A model's scores on the four rubric dimensions."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    relevance: int = Field(ge=1, le=5)
    depth: int = Field(ge=1, le=5)
    clarity: int = Field(ge=1, le=5)
    technical: int = Field(ge=1, le=5)


class RubricAnswer(BaseModel):
    """A model's rubric scores, overall score and feedback."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    scores: RubricDimensionScores
    overall: float = Field(ge=1, le=5)
    feedback: str = Field(min_length=1, max_length=_MAX_ANSWER_TEXT)
    # Grounded scoring: the passage ids the model relied on (the caller keeps only real ones).
    citations: tuple[str, ...] = ()

    _clean_feedback = field_validator("feedback", mode="before")(_storable)


_LEVEL = {"type": "integer", "enum": [1, 2, 3, 4, 5]}

# The verdict comes first and is one letter: one token at a known place of the answer, whose
# log-probabilities are the judge's probability (domain/verdict_probability.py).
COMPARISON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": list(VERDICT_LETTERS)},
        "justification": {"type": "string"},
        "confidence": _LEVEL,
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}

RUBRIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scores": {
            "type": "object",
            "properties": dict.fromkeys(("relevance", "depth", "clarity", "technical"), _LEVEL),
            "required": ["relevance", "depth", "clarity", "technical"],
            "additionalProperties": False,
        },
        "overall": {"type": "number"},
        "feedback": {"type": "string"},
    },
    "required": ["scores", "overall", "feedback"],
    "additionalProperties": False,
}

# Grounded scoring (reference passages given) also asks which passages the score relied on.
GROUNDED_RUBRIC_SCHEMA: dict[str, Any] = {
    **RUBRIC_SCHEMA,
    "properties": {
        **RUBRIC_SCHEMA["properties"],
        "citations": {"type": "array", "items": {"type": "string"}},
    },
    "required": [*RUBRIC_SCHEMA["required"], "citations"],
}

_CODE_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _json_object(text: str) -> Any:
    stripped = text.strip()
    fenced = _CODE_FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1)
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        # Some models wrap the object in prose; take the outermost braces once.
        start, end = stripped.find("{"), stripped.rfind("}")
        if start == -1 or end <= start:
            raise MalformedAnswerError("the answer holds no JSON object") from None
        try:
            return json.loads(stripped[start : end + 1])
        except json.JSONDecodeError as exc:
            raise MalformedAnswerError(f"the answer is not valid JSON: {exc.msg}") from None


def _validated(model: type[BaseModel], text: str | None) -> Any:
    if not text or not text.strip():
        raise MalformedAnswerError("the answer is empty")
    document = _json_object(text)
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "<root>" for e in exc.errors())
        raise MalformedAnswerError(f"the answer does not match the schema ({fields})") from None


def parse_comparison_answer(text: str | None) -> ComparisonAnswer:
    """Parse a model's comparison answer; raises MalformedAnswerError."""
    answer: ComparisonAnswer = _validated(ComparisonAnswer, text)
    return answer


def parse_rubric_answer(text: str | None) -> RubricAnswer:
    """Parse a model's rubric answer; raises MalformedAnswerError."""
    answer: RubricAnswer = _validated(RubricAnswer, text)
    return answer
