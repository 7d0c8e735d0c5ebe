"""Hand-written in-memory fakes of the application layer's store Protocols."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel

from common_core.topics import Topic
from submission_service.application.ports import (
    AssessmentRecord,
    ResponseRecord,
    ScoreRecord,
    ScoringJob,
)
from submission_service.domain.assessments import JobStatus, QuestionScore, ScoreStatus
from submission_service.domain.identity import Identity


@dataclass
class FakeScoringStore:
    """An in-memory ScoringStore."""

    responses: dict[UUID, ResponseRecord] = field(default_factory=dict)
    jobs: dict[UUID, ScoringJob] = field(default_factory=dict)
    assessments: dict[UUID, AssessmentRecord] = field(default_factory=dict)
    records: dict[UUID, list[tuple[UUID | None, QuestionScore]]] = field(default_factory=dict)
    scores: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[Topic, BaseModel, str]] = field(default_factory=list)
    seen: set[tuple[str, UUID]] = field(default_factory=set)
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    async def stage_event(
        self, topic: Topic, payload: BaseModel, *, key: str, correlation_id: UUID
    ) -> UUID:
        self.events.append((topic, payload, key))
        return uuid4()

    async def insert_job(self, job: ScoringJob, *, request_event_id: UUID | None) -> None:
        self.jobs[job.id] = job

    async def jobs_for_response(self, assessment_id: UUID, response_id: UUID) -> list[ScoringJob]:
        return [
            j
            for j in self.jobs.values()
            if j.assessment_id == assessment_id and j.response_id == response_id
        ]

    async def claim_event(self, consumer: str, event_id: UUID) -> bool:
        if (consumer, event_id) in self.seen:
            return False
        self.seen.add((consumer, event_id))
        return True

    async def job_for_request(self, request_id: UUID) -> ScoringJob | None:
        return next((j for j in self.jobs.values() if j.request_id == request_id), None)

    async def finish_job(
        self,
        job_id: UUID,
        status: JobStatus,
        error: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
    ) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], status=status, error=error, result=result)

    async def response_by_id(self, response_id: UUID) -> ResponseRecord | None:
        return self.responses.get(response_id)

    async def insert_score(self, **values: Any) -> None:
        self.scores.append(values)

    async def update_score_record(
        self,
        assessment_id: UUID,
        job_id: UUID,
        *,
        status: ScoreStatus,
        score: float | None,
        detail: dict[str, Any],
    ) -> None:
        self.records[assessment_id] = [
            (
                jid,
                QuestionScore(
                    r.module_slug,
                    r.question_id,
                    r.score_type,
                    status,
                    r.max_score,
                    score,
                    r.response_id,
                    detail,
                )
                if jid == job_id
                else r,
            )
            for jid, r in self.records[assessment_id]
        ]

    async def lock_assessment(self, assessment_id: UUID) -> AssessmentRecord | None:
        return self.assessments.get(assessment_id)

    async def unfinished_jobs(self, assessment_id: UUID) -> int:
        return sum(
            1
            for j in self.jobs.values()
            if j.assessment_id == assessment_id and not j.status.is_terminal
        )

    async def score_records(self, assessment_id: UUID) -> list[QuestionScore]:
        return [r for _, r in self.records.get(assessment_id, [])]

    async def complete_assessment(
        self, assessment_id: UUID, result: dict[str, Any], completed_at: datetime
    ) -> None:
        a = self.assessments[assessment_id]
        self.assessments[assessment_id] = AssessmentRecord(
            a.id,
            a.definition_id,
            a.identity,
            "completed",
            a.created_at,
            a.submitted_at,
            completed_at,
            result,
        )

    async def enqueue_deliveries(
        self, assessment_id: UUID, event: str, payload: dict[str, Any]
    ) -> int:
        self.deliveries.append(payload)
        return 1


@dataclass
class FakeResponseStore(FakeScoringStore):
    """An in-memory ResponseStore on top of the scoring fake."""

    locked: set[UUID] = field(default_factory=set)

    async def insert_response(self, record: ResponseRecord) -> ResponseRecord:
        self.responses[record.id] = record
        return record

    async def response_for(self, identity: Identity, response_id: UUID) -> ResponseRecord | None:
        record = self.responses.get(response_id)
        if record is None or record.identity != identity:
            return None
        return replace(record, locked=response_id in self.locked)

    async def update_response(self, response_id: UUID, changes: dict[str, Any]) -> ResponseRecord:
        self.responses[response_id] = replace(self.responses[response_id], **changes)
        return self.responses[response_id]

    async def list_responses(
        self,
        identity: Identity,
        *,
        module_slug: str | None,
        question_id: str | None,
        limit: int,
    ) -> list[tuple[ResponseRecord, list[ScoreRecord]]]:
        mine = [
            r
            for r in self.responses.values()
            if r.identity == identity
            and module_slug in (None, r.module_slug)
            and question_id in (None, r.question_id)
        ]
        mine.sort(key=lambda r: r.created_at, reverse=True)
        return [(r, []) for r in mine[:limit]]

    async def claim_responses(self, anonymous_token: UUID, user_id: str) -> tuple[int, int]:
        user = Identity(user_id=user_id)
        answered = {
            (r.module_slug, r.question_id) for r in self.responses.values() if r.identity == user
        }
        claimed = skipped = 0
        for rid, r in list(self.responses.items()):
            if r.identity.anonymous_token != anonymous_token:
                continue
            if (r.module_slug, r.question_id) in answered:
                skipped += 1
            else:
                self.responses[rid] = replace(r, identity=user)
                claimed += 1
        return claimed, skipped
