"""Learner data lifecycle: the retention purge of finished answers' texts, and an operator's
erasure of one learner's texts and every copy of them in the submission database."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from typing import Protocol
from uuid import UUID, uuid4

from common_core.runtime.metrics import ROWS_ERASED
from submission_service.application.ports import ScoringJob, UnitOfWork
from submission_service.application.scoring import RubricPolicy, fuse_essay_if_ready
from submission_service.domain.assessments import JobStatus
from submission_service.domain.data_lifecycle import (
    ErasedKind,
    ErasureReport,
    subject_hash,
    subject_kind,
)
from submission_service.domain.identity import Identity

# The error a scoring job stopped by an erasure keeps (its answer has no text left to score).
ERASED_JOB_ERROR = {"code": "answer_erased", "message": "the learner's answer was erased"}


class LearnerDataStore(Protocol):
    """Finding and removing learner texts (retention and erasure) and the erasure audit."""

    async def purge_finished_texts(self, cutoff: datetime, limit: int) -> int:
        """Empty the text of up to `limit` answers whose scoring finished before `cutoff`."""
        ...

    async def lock_subject(self, subject_hash: str) -> None:
        """Serialise erasures of one subject until the transaction ends."""
        ...

    async def lock_responses_of(self, identity: Identity) -> list[UUID]:
        """The ids of every answer of the learner, locked for update."""
        ...

    async def lock_pending_requests(self, response_ids: list[UUID]) -> list[ScoringJob]:
        """The jobs of these answers still waiting for a rubric result, locked for update."""
        ...

    async def remove_answer_texts(self, response_ids: list[UUID]) -> int:
        """Empty these answers' texts and metadata; how many had anything left to remove."""
        ...

    async def remove_score_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the feedback stored with these answers' scores; how many scores had some."""
        ...

    async def remove_stage_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the feedback kept in these answers' stage results; how many jobs had some."""
        ...

    async def delete_outbox_copies(self, response_ids: list[UUID]) -> int:
        """Delete the outbox rows of these answers whose events carry the text."""
        ...

    async def remove_outbox_feedback(self, response_ids: list[UUID]) -> int:
        """Empty the feedback in these answers' score events in the outbox; how many rows."""
        ...

    async def delete_idempotency_records(self, identity: Identity) -> int:
        """Delete the replies stored under the learner's idempotency keys."""
        ...

    async def erased_before(self, subject_hash: str) -> bool:
        """True when an erasure of this subject is already on record."""
        ...

    async def record_erasure(
        self,
        audit_id: UUID,
        *,
        subject_kind: str,
        subject_hash: str,
        operator_subject: str,
        erased: dict[str, int],
        already_erased: bool,
    ) -> None:
        """Write an erasure's audit row."""
        ...


class LifecycleUnitOfWork(UnitOfWork, Protocol):
    """A unit of work that also reaches the learner-data store."""

    @property
    def learner_data(self) -> LearnerDataStore:
        """Retention and erasure of learner texts."""
        ...


class LifecycleTransactions(Protocol):
    """Opens lifecycle units of work: each call is one transaction."""

    def __call__(self) -> AbstractAsyncContextManager[LifecycleUnitOfWork]:
        """A unit of work, committed when the block ends normally, rolled back when it raises."""
        ...


async def purge_answer_texts(uow: LifecycleUnitOfWork, *, cutoff: datetime, limit: int) -> int:
    """Purge one bounded batch of finished answers' texts; how many were purged."""
    return await uow.learner_data.purge_finished_texts(cutoff, limit)


async def erase_learner(
    uow: LifecycleUnitOfWork,
    subject: Identity,
    *,
    operator_subject: str,
    policy: RubricPolicy,
    correlation_id: UUID,
) -> ErasureReport:
    """Erase a learner's answer texts and every copy of them, stop their pending scoring, and
    record the request; idempotent (a repeat removes nothing and reports `already_erased`)."""
    store = uow.learner_data
    hashed = subject_hash(subject)
    await store.lock_subject(hashed)
    response_ids = await store.lock_responses_of(subject)
    for job in await store.lock_pending_requests(response_ids):
        await _stop_scoring(uow, policy, job, correlation_id)
    # After the scoring stopped: fusing an essay may still read its text (its rule score).
    erased = {
        ErasedKind.ANSWER_TEXTS.value: await store.remove_answer_texts(response_ids),
        ErasedKind.SCORE_FEEDBACK.value: await store.remove_score_feedback(response_ids),
        ErasedKind.STAGE_FEEDBACK.value: await store.remove_stage_feedback(response_ids),
        ErasedKind.OUTBOX_ROWS.value: await store.delete_outbox_copies(response_ids),
        ErasedKind.OUTBOX_FEEDBACK.value: await store.remove_outbox_feedback(response_ids),
        ErasedKind.IDEMPOTENCY_RECORDS.value: await store.delete_idempotency_records(subject),
    }
    already_erased = not any(erased.values()) and await store.erased_before(hashed)
    audit_id = uuid4()
    await store.record_erasure(
        audit_id,
        subject_kind=subject_kind(subject),
        subject_hash=hashed,
        operator_subject=operator_subject,
        erased=erased,
        already_erased=already_erased,
    )
    for kind, count in erased.items():
        if count:
            uow.after_commit(partial(ROWS_ERASED.labels(kind=kind).inc, count))
    return ErasureReport(subject_kind(subject), erased, already_erased, audit_id)


async def _stop_scoring(
    uow: UnitOfWork, policy: RubricPolicy, job: ScoringJob, correlation_id: UUID
) -> None:
    """Fail a job whose answer is being erased, so a late result is ignored (`already_finished`)
    and its assessment can still complete with the stages that did score."""
    await uow.scoring.finish_job(job.id, JobStatus.FAILED, dict(ERASED_JOB_ERROR))
    failed = ScoringJob(
        id=job.id,
        job_type=job.job_type,
        status=JobStatus.FAILED,
        response_id=job.response_id,
        assessment_id=job.assessment_id,
        request_id=job.request_id,
        error=dict(ERASED_JOB_ERROR),
    )
    if failed.assessment_id is not None:
        await fuse_essay_if_ready(uow, policy, failed, correlation_id)
