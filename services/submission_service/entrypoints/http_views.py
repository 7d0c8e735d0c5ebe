"""Records as HTTP response models."""

from __future__ import annotations

from typing import Any

from submission_service.application.ports import ResponseRecord, ScoreRecord
from submission_service.entrypoints.http_schemas import ScoreOut


def response_out(record: ResponseRecord) -> dict[str, Any]:
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


def score_out(score: ScoreRecord) -> ScoreOut:
    return ScoreOut(
        score_id=score.id,
        score_data=score.score_data,
        model_id=score.model_id,
        prompt_version=score.prompt_version,
        created_at=score.created_at,
    )
