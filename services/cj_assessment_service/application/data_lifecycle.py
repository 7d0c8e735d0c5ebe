"""Where essay texts end: the retention purge of finished batches and an operator's erasure of
one batch.

A batch needs its texts only while it runs (top-ups, retries and hedges read them). Once it is
finished (COMPLETED, FAILED or CANCELLED) for ESSAY_TEXT_RETENTION_SECONDS, the purge blanks its
texts; ids, scores, pairs, statistics and the batch row stay.

An erasure removes every copy of a batch's texts from the CJ database at once: the essays,
the comparison requests in the outbox (published or not: each carries two essays) and the
uploaded essay set the batch was read from. A live batch is cancelled first (its failed event
tells the requester, with code `cancelled`): a running batch cannot continue without its texts,
and an operator asked to erase a learner's data expects it gone now, not a 409 to retry until
a batch of hours ends. Answers still in flight arrive for a cancelled batch and are dropped as
late. Erasing again is harmless: nothing is left, the counts are zero and `already_erased` is
true; every request gets its audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final
from uuid import UUID, uuid4

import structlog

from cj_assessment_service.application.outcomes import BatchOutcomes
from cj_assessment_service.application.ports import (
    ErasureRecord,
    TextLifecycleStore,
    UnitOfWork,
)
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.domain.errors import BatchNotFound
from common_core.errors import ErrorCode
from common_core.runtime.metrics import ROWS_ERASED, ROWS_PURGED
from common_core.topics import Topic

log = structlog.get_logger(__name__)

ERASED_KINDS: Final = (
    "essay_texts",
    "outbox_requests",
    "essay_sets",
    "essay_set_texts",
    "batches_cancelled",
)
"""What an erasure reports, always all of them: texts blanked in `cj_essays`, comparison
requests deleted from the outbox, the uploaded essay set and its texts, and whether the batch
was live and so cancelled."""


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What one erasure request did."""

    batch_id: UUID
    erased: MappingProxyType[str, int]
    already_erased: bool
    audit_id: UUID


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one purge chunk did: batches whose texts went, and how many texts."""

    batches: int = 0
    texts: int = 0


async def purge_expired_texts(
    store: TextLifecycleStore, *, finished_before: datetime, limit: int, at: datetime
) -> PurgeReport:
    """Blank the texts of up to `limit` batches finished before `finished_before` (live
    batches are never touched: they have no finish time)."""
    batch_ids = await store.lock_purgeable(finished_before, limit)
    if not batch_ids:
        return PurgeReport()
    return PurgeReport(len(batch_ids), await store.blank_texts(batch_ids, at))


def count_purged(report: PurgeReport) -> None:
    """Count a committed purge chunk (`huleedu_retention_rows_purged_total{kind}`)."""
    ROWS_PURGED.labels(kind="cj_essay_texts").inc(report.texts)
    if report.batches:
        log.info("cj_essay_texts_purged", batches=report.batches, texts=report.texts)


class BatchErasure:
    """Erases one batch's essay texts from the CJ database, in the caller's transaction."""

    def __init__(self, settings: Settings, outcomes: BatchOutcomes) -> None:
        self._settings = settings
        self._outcomes = outcomes

    async def erase(
        self, uow: UnitOfWork, batch_id: UUID, *, requested_by: str | None
    ) -> ErasureReport:
        """Erase the batch's texts everywhere in the CJ database (cancelling it if live) and
        record who asked; raises `BatchNotFound` for an unknown batch."""
        # The batch's lock orders the erasure with every writer of its essays and requests:
        # a callback that plans more pairs holds it until its requests are in the outbox.
        batch = await uow.batches.lock(batch_id)
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        already_erased = await uow.lifecycle.erased_before(batch_id)
        now = datetime.now(UTC)
        cancelled = 0
        if not batch.state.is_terminal:
            await self._outcomes.fail(
                uow,
                batch,
                ErrorCode.CANCELLED,
                "batch cancelled: an operator erased its essay texts",
                operation="erase",
                state=BatchState.CANCELLED,
            )
            cancelled = 1
        texts = await uow.lifecycle.blank_texts([batch_id], now)
        requests = await uow.lifecycle.delete_outbox_rows(
            self._settings.topic(Topic.LLM_COMPARISON_REQUESTED), batch_id
        )
        sets, set_texts = (0, 0)
        if batch.essay_set_id is not None:
            sets, set_texts = await uow.essay_sets.erase(batch.essay_set_id)
        erased = dict(zip(ERASED_KINDS, (texts, requests, sets, set_texts, cancelled), strict=True))
        record = ErasureRecord(
            id=uuid4(),
            batch_id=batch_id,
            requested_at=now,
            requested_by=requested_by,
            batch_state=batch.state,
            erased=erased,
        )
        await uow.lifecycle.record_erasure(record)

        def count() -> None:
            for kind in ("essay_texts", "outbox_requests", "essay_sets", "essay_set_texts"):
                ROWS_ERASED.labels(kind=f"cj_{kind}").inc(erased[kind])
            log.info(
                "cj_batch_erased",
                batch_id=str(batch_id),
                audit_id=str(record.id),
                already_erased=already_erased,
                **erased,
            )

        uow.after_commit(count)
        return ErasureReport(batch_id, MappingProxyType(erased), already_erased, record.id)
