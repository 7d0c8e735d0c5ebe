"""Course reference passages: loading them and retrieving them with PostgreSQL full-text search."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import cast, delete, func, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG, insert
from sqlalchemy.ext.asyncio import AsyncSession

from submission_service.adapters.tables import reference_passages
from submission_service.application.ports import RetrievedPassage
from submission_service.domain.assessments import ReferencePassage

# The text search configuration of the generated `search` column (migration sub0003).
SEARCH_CONFIG = "english"


class PostgresReferencePassages:
    """`reference_passages`: a `tsvector` column with a GIN index, ranked by `ts_rank_cd`."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace_passages(
        self, definition_id: str, passages: Sequence[ReferencePassage]
    ) -> None:
        """Make the stored passages of a definition exactly these (insert, update, delete)."""
        # Instances starting together load the same files; one at a time avoids deadlocks.
        await self._session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('submission.reference_passages'))")
        )
        table = reference_passages
        await self._session.execute(
            delete(table).where(
                table.c.definition_id == definition_id,
                table.c.passage_id.notin_([p.id for p in passages]),
            )
        )
        if not passages:
            return
        rows = [
            {
                "definition_id": definition_id,
                "passage_id": p.id,
                "kind": p.kind.value,
                "question_ids": list(p.question_ids),
                "position": position,
                "text": p.text,
            }
            for position, p in enumerate(passages)
        ]
        statement = insert(table).values(rows)
        await self._session.execute(
            statement.on_conflict_do_update(
                constraint="pk_reference_passages",
                set_={
                    "kind": statement.excluded.kind,
                    "question_ids": statement.excluded.question_ids,
                    "position": statement.excluded.position,
                    "text": statement.excluded.text,
                    "loaded_at": func.now(),
                },
            )
        )

    async def retrieve_passages(
        self, definition_id: str, question_id: str, terms: Sequence[str], limit: int
    ) -> list[RetrievedPassage]:
        """The question's passages matching any of the terms, best `ts_rank_cd` first; when none
        matches, the question's first passages (rank 0), since they are still its material."""
        table = reference_passages
        about_question = (
            table.c.definition_id == definition_id,
            table.c.question_ids.contains([question_id]),
        )
        if terms:
            query = func.to_tsquery(cast(SEARCH_CONFIG, REGCONFIG), " | ".join(terms))
            rank = func.ts_rank_cd(table.c.search, query).label("rank")
            rows = (
                await self._session.execute(
                    select(table.c.passage_id, table.c.kind, table.c.text, rank)
                    .where(*about_question, table.c.search.op("@@")(query))
                    .order_by(rank.desc(), table.c.position)
                    .limit(limit)
                )
            ).all()
            if rows:
                return [RetrievedPassage(r.passage_id, r.kind, r.text, float(r.rank)) for r in rows]
        first = (
            await self._session.execute(
                select(table.c.passage_id, table.c.kind, table.c.text)
                .where(*about_question)
                .order_by(table.c.position)
                .limit(limit)
            )
        ).all()
        return [RetrievedPassage(r.passage_id, r.kind, r.text, 0.0) for r in first]
