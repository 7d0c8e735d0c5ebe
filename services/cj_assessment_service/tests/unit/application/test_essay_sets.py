"""Essay sets: the upload use case through an in-memory store, and intake of a request naming a
set through the in-memory batch repository."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from cj_assessment_service.application.essay_sets import (
    WRITE_CHUNK,
    delete_expired_essay_sets,
    essay_digest_line,
    upload_essay_set,
)
from cj_assessment_service.application.ports import EssayRecord, StoredEssaySet
from cj_assessment_service.application.workflow import CJWorkflow
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import InvalidEssaySet
from cj_assessment_service.testing.fakes import FakeEssaySets, FakeUnitOfWork
from cj_assessment_service.testing.requests import request_envelope
from common_core.events.cj import EssaySetReference, EssayToProcess
from common_core.topics import Topic

RETENTION = timedelta(hours=1)


async def lines(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


def essay_line(essay_id: str, text: str) -> bytes:
    return json.dumps({"essay_id": essay_id, "text_content": text}).encode()


class TestUpload:
    async def test_essays_are_stored_in_order_in_chunks_with_their_digest(self) -> None:
        store = FakeEssaySets()
        n = WRITE_CHUNK * 2 + 7
        body = [essay_line(f"e{i}", f"text {i}") for i in range(n)]

        receipt = await upload_essay_set(store, lines(*body, b""), retention=RETENTION)

        stored = store.essays[receipt.essay_set_id]
        assert [(e.position, e.essay_id) for e in stored] == [(i, f"e{i}") for i in range(n)]
        assert store.writes == [WRITE_CHUNK, WRITE_CHUNK, 7]
        digest = hashlib.sha256(
            b"".join(essay_digest_line(f"e{i}", f"text {i}") for i in range(n))
        ).hexdigest()
        assert receipt.content_sha256 == digest
        assert store.sealed[receipt.essay_set_id] == (n, digest)
        assert receipt.essay_count == n

    async def test_more_essays_than_the_limit_are_refused(self) -> None:
        body = [essay_line(f"e{i}", "text") for i in range(4)]
        with pytest.raises(InvalidEssaySet) as refused:
            await upload_essay_set(FakeEssaySets(), lines(*body), retention=RETENTION, max_essays=3)
        assert refused.value.field == "essays"

    async def test_expired_sets_are_deleted_and_live_ones_kept(self) -> None:
        store = FakeEssaySets()
        old = await upload_essay_set(store, lines(essay_line("a", "x")), retention=-RETENTION)
        live = await upload_essay_set(store, lines(essay_line("a", "x")), retention=RETENTION)

        assert await delete_expired_essay_sets(store, limit=10) == 1
        assert set(store.expiry) == {live.essay_set_id}
        assert old.essay_set_id not in store.essays


def stored_set(n: int, *, expires_in: timedelta = RETENTION) -> StoredEssaySet:
    return StoredEssaySet(
        id=uuid4(),
        content_sha256="ab" * 32,
        expires_at=datetime.now(UTC) + expires_in,
        essays=[EssayRecord(i, f"e{i}", f"essay {i} text") for i in range(n)],
    )


async def store(essay_sets: FakeEssaySets, stored: StoredEssaySet) -> None:
    """Upload `stored` as the upload use case would."""
    await essay_sets.create(stored.id, datetime.now(UTC), stored.expires_at)
    await essay_sets.add_essays(stored.id, stored.essays)
    await essay_sets.seal(stored.id, len(stored.essays), stored.content_sha256)


class TestIntakeByReference:
    async def test_a_request_naming_a_set_starts_a_batch_of_its_essays(self) -> None:
        uow = FakeUnitOfWork()
        essay_set = stored_set(5)
        await store(uow.essay_sets, essay_set)
        settings = Settings()
        envelope = request_envelope(settings, "ref", [])
        data = envelope.data.model_copy(
            update={"essay_set": EssaySetReference(essay_set_id=essay_set.id)}
        )

        await CJWorkflow(settings, seed=1).handle_request(
            uow, envelope.model_copy(update={"data": data})
        )

        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.WAITING_CALLBACKS
        assert batch.essay_count == 5
        assert uow.essays.rows[batch.id] == essay_set.essays
        assert len(uow.events(Topic.LLM_COMPARISON_REQUESTED.value)) == 10

    @pytest.mark.parametrize(
        ("known", "expires_in", "sha", "inline", "field"),
        [
            (False, RETENTION, None, 0, "essay_set.essay_set_id"),
            (True, -RETENTION, None, 0, "essay_set.essay_set_id"),
            (True, RETENTION, "cd" * 32, 0, "essay_set.content_sha256"),
            (True, RETENTION, None, 2, "essay_set"),
        ],
    )
    async def test_a_reference_that_cannot_be_resolved_fails_naming_the_field(
        self, known: bool, expires_in: timedelta, sha: str | None, inline: int, field: str
    ) -> None:
        uow = FakeUnitOfWork()
        essay_set = stored_set(3, expires_in=expires_in)
        if known:
            await store(uow.essay_sets, essay_set)
        settings = Settings()
        items = [EssayToProcess(essay_id=f"x{i}", text_content="text") for i in range(inline)]
        envelope = request_envelope(settings, "ref", items)
        reference = EssaySetReference(essay_set_id=essay_set.id, content_sha256=sha)
        data = envelope.data.model_copy(update={"essay_set": reference})

        await CJWorkflow(settings, seed=1).handle_request(
            uow, envelope.model_copy(update={"data": data})
        )

        (batch,) = uow.batches.rows.values()
        assert batch.state == BatchState.FAILED
        (failed,) = uow.events(Topic.CJ_ASSESSMENT_FAILED.value)
        assert failed.data.error_detail.code == "validation"
        assert failed.data.error_detail.details["field"] == field
        assert uow.events(Topic.LLM_COMPARISON_REQUESTED.value) == []
