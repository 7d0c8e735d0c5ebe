"""The unit of work against real PostgreSQL: what happens around its commit and its rollback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.events import EssayToProcess, EventEnvelope
from common_core.events.cj import CJAssessmentRequestV1
from common_core.runtime.database import create_engine, create_session_factory
from common_core.runtime.migrations import run_migrations
from common_core.runtime.outbox import event_outbox
from common_core.runtime.unit_of_work import SessionTransactions, SessionUnitOfWork

pytestmark = pytest.mark.integration


def _envelope() -> EventEnvelope[CJAssessmentRequestV1]:
    return EventEnvelope[CJAssessmentRequestV1](
        event_type="test.uow",
        source_service="tests",
        correlation_id=uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref="uow", essays_to_process=[EssayToProcess(essay_id="e", text_content="t")]
        ),
    )


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    await run_migrations(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def transactions(engine: AsyncEngine) -> SessionTransactions[SessionUnitOfWork]:
    return SessionTransactions(create_session_factory(engine), SessionUnitOfWork)


async def _outbox_rows(engine: AsyncEngine, event_ids: list[object]) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(event_outbox)
            .where(event_outbox.c.event_id.in_(event_ids))
        )
    return int(count or 0)


class TestCommit:
    async def test_staged_events_reach_the_outbox_and_hooks_run_in_order(
        self, engine: AsyncEngine, transactions: SessionTransactions[SessionUnitOfWork]
    ) -> None:
        order: list[str] = []
        envelopes = [_envelope(), _envelope()]

        async def buffered_write() -> None:
            order.append("before")

        async with transactions() as uow:
            for envelope in envelopes:
                uow.stage_event("test.uow", envelope, key="k")
            uow.before_commit(buffered_write)
            uow.after_commit(lambda: order.append("after"))
            assert await _outbox_rows(engine, [e.event_id for e in envelopes]) == 0

        assert order == ["before", "after"]
        assert await _outbox_rows(engine, [e.event_id for e in envelopes]) == 2


class TestRollback:
    async def test_a_failed_block_writes_nothing_and_runs_no_hook(
        self, engine: AsyncEngine, transactions: SessionTransactions[SessionUnitOfWork]
    ) -> None:
        ran: list[str] = []
        envelope = _envelope()

        async def buffered_write() -> None:
            ran.append("before")

        async def failing_use_case() -> None:
            async with transactions() as uow:
                uow.stage_event("test.uow", envelope, key=None)
                uow.before_commit(buffered_write)
                uow.after_commit(lambda: ran.append("after"))
                raise RuntimeError("use case failed")

        with pytest.raises(RuntimeError):
            await failing_use_case()

        assert ran == []
        assert await _outbox_rows(engine, [envelope.event_id]) == 0
