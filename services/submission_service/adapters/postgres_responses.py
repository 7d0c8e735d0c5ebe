"""Answers: the `assessment_responses` store, and the row mappers the other stores share."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import exists, func, select, update
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncSession

from submission_service.adapters.tables import (
    assessment_responses,
    assessment_scores,
    response_locks,
)
from submission_service.application.ports import ResponseEdit, ResponseRecord, ScoreRecord
from submission_service.domain.identity import Identity


def owned_by(table: Any, identity: Identity) -> Any:
    """The condition selecting the rows of `table` that belong to `identity`."""
    if identity.user_id is not None:
        return table.c.user_id == identity.user_id
    return table.c.anonymous_token == identity.anonymous_token


def identity_of(row: Row[Any]) -> Identity:
    """The identity a row belongs to."""
    return Identity(user_id=row.user_id, anonymous_token=row.anonymous_token)


def response_record(row: Any, *, locked: bool = False) -> ResponseRecord:
    """An `assessment_responses` row as a record."""
    return ResponseRecord(
        id=row.id,
        identity=identity_of(row),
        question_id=row.question_id,
        module_slug=row.module_slug,
        learning_outcome_id=row.learning_outcome_id,
        content_id=row.content_id,
        answer_text=row.answer_text,
        answer_metadata=dict(row.answer_metadata or {}),
        created_at=row.created_at,
        completed_at=row.completed_at,
        locked=locked,
    )


class PostgresResponses:
    """Answers (`assessment_responses`), scoped by identity."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_response(self, record: ResponseRecord) -> ResponseRecord:
        """Store a new answer."""
        row = (
            await self._session.execute(
                assessment_responses.insert()
                .values(
                    id=record.id,
                    user_id=record.identity.user_id,
                    anonymous_token=record.identity.anonymous_token,
                    question_id=record.question_id,
                    module_slug=record.module_slug,
                    learning_outcome_id=record.learning_outcome_id,
                    content_id=record.content_id,
                    answer_text=record.answer_text,
                    answer_metadata=record.answer_metadata,
                    completed_at=record.completed_at,
                )
                .returning(*assessment_responses.c)
            )
        ).one()
        return response_record(row)

    async def response_for(self, identity: Identity, response_id: UUID) -> ResponseRecord | None:
        """The caller's own answer, locked for update."""
        locked = exists().where(response_locks.c.response_id == assessment_responses.c.id)
        row = (
            await self._session.execute(
                select(*assessment_responses.c, locked.label("locked"))
                .where(
                    assessment_responses.c.id == response_id,
                    owned_by(assessment_responses, identity),
                )
                .with_for_update(of=assessment_responses)
            )
        ).first()
        return response_record(row, locked=bool(row.locked)) if row is not None else None

    async def response_by_id(self, response_id: UUID) -> ResponseRecord | None:
        """Any answer by id (consumers only)."""
        row = (
            await self._session.execute(
                select(assessment_responses).where(assessment_responses.c.id == response_id)
            )
        ).first()
        return response_record(row) if row is not None else None

    async def update_response(self, response_id: UUID, edit: ResponseEdit) -> ResponseRecord:
        """Apply an edit (its fields are the columns of the same names); a new text clears the
        marker of a removed one."""
        changes = edit.changes()
        if "answer_text" in changes:
            changes.update(text_removed_at=None, text_removed_by=None)
        row = (
            await self._session.execute(
                update(assessment_responses)
                .where(assessment_responses.c.id == response_id)
                .values(**changes)
                .returning(*assessment_responses.c)
            )
        ).one()
        return response_record(row)

    async def list_responses(
        self,
        identity: Identity,
        *,
        module_slug: str | None,
        question_id: str | None,
        limit: int,
    ) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
        """The caller's answers, newest first, with scores."""
        query = select(assessment_responses).where(owned_by(assessment_responses, identity))
        if module_slug is not None:
            query = query.where(assessment_responses.c.module_slug == module_slug)
        if question_id is not None:
            query = query.where(assessment_responses.c.question_id == question_id)
        rows = (
            await self._session.execute(
                query.order_by(
                    assessment_responses.c.created_at.desc(), assessment_responses.c.id.desc()
                ).limit(limit)
            )
        ).all()
        ids = [r.id for r in rows]
        scores: dict[UUID, list[ScoreRecord]] = {i: [] for i in ids}
        if ids:
            score_rows = (
                await self._session.execute(
                    select(assessment_scores)
                    .where(assessment_scores.c.response_id.in_(ids))
                    .order_by(assessment_scores.c.created_at.desc())
                )
            ).all()
            for s in score_rows:
                scores[s.response_id].append(
                    ScoreRecord(
                        id=s.id,
                        response_id=s.response_id,
                        score_data=s.score_data,
                        model_id=s.model_id,
                        prompt_version=s.prompt_version,
                        created_at=s.created_at,
                    )
                )
        return [(response_record(r), scores[r.id]) for r in rows]

    async def claim_responses(self, anonymous_token: UUID, user_id: str) -> tuple[int, int]:
        """Move the token's answers to the user, skipping questions the user already answered."""
        mine = assessment_responses.alias("mine")
        already = exists().where(
            mine.c.user_id == user_id,
            mine.c.module_slug == assessment_responses.c.module_slug,
            mine.c.question_id == assessment_responses.c.question_id,
        )
        total = (
            await self._session.execute(
                select(func.count()).where(
                    assessment_responses.c.anonymous_token == anonymous_token
                )
            )
        ).scalar_one()
        moved = await self._session.execute(
            update(assessment_responses)
            .where(assessment_responses.c.anonymous_token == anonymous_token, ~already)
            .values(user_id=user_id, anonymous_token=None)
        )
        if not isinstance(moved, CursorResult):  # an UPDATE always answers with one
            raise TypeError(f"an UPDATE answered with {type(moved).__name__}")
        claimed = moved.rowcount
        return claimed, int(total) - claimed
