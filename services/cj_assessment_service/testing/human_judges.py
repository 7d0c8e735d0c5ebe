"""Test support for the human judges' page: a live batch with pairs assigned to people, written
straight to the database (as the planner would), and the judges' links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.adapters.tables import cj_pairs
from cj_assessment_service.application.ports import EssayRecord, NewPair, RequestSettings
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.judge_links import JudgeLinkClaims, sign_judge_link
from cj_assessment_service.testing.harness import CJRuntime
from cj_assessment_service.testing.requests import batch_record
from common_core.events.cj import HumanJudge, HumanJudgingRequest
from common_core.events.llm import JudgeKind

JUDGE_LINK_SECRET = "a-judge-link-secret-for-tests-of-32-bytes"  # noqa: S105 - tests only
PROMPT = "Argue for or against school uniforms."


@dataclass(frozen=True, slots=True)
class HumanBatch:
    """A seeded batch: its id, the deadline, and each judge's pairs in planning order."""

    batch_id: uuid.UUID
    deadline: datetime
    pairs: dict[str, list[NewPair]]


async def seed_human_batch(
    runtime: CJRuntime,
    texts: list[str],
    assignments: dict[str, list[tuple[int, int]]],
    *,
    deadline: datetime | None = None,
) -> HumanBatch:
    """A live batch of `texts` whose human judges (the keys of `assignments`, display name
    "Teacher <id>") have the given pairs of essay positions, pending."""
    deadline = deadline or datetime.now(UTC) + timedelta(hours=1)
    request = HumanJudgingRequest(
        judges=[HumanJudge(judge_id=j, display_name=f"Teacher {j}") for j in assignments],
        share=0.5,
        deadline=deadline,
    )
    planned = {
        j: [NewPair(uuid.uuid4(), a, b, uuid.uuid4()) for a, b in pairs]
        for j, pairs in assignments.items()
    }
    count = sum(len(p) for p in planned.values())
    batch = batch_record(
        essay_count=len(texts),
        budget=count,
        planned=count,
        human_planned=count,
        human_judging=request,
        human_deadline=deadline,
        request_settings=RequestSettings(language="en", essay_instructions=PROMPT),
    )
    async with runtime.sessions() as session:
        uow = PostgresUnitOfWork(session)
        await uow.batches.add(batch)
        await uow.essays.add(
            batch.id, [EssayRecord(i, f"essay-id-{i}", text) for i, text in enumerate(texts)]
        )
        asked = datetime.now(UTC)
        for judge_id, pairs in planned.items():
            await uow.pairs.add(batch.id, 1, pairs)
            for index, pair in enumerate(pairs):
                # Planning order is (wave, requested_at, id): one microsecond apart keeps it.
                await session.execute(
                    update(cj_pairs)
                    .where(cj_pairs.c.id == pair.id)
                    .values(
                        judge_kind=JudgeKind.HUMAN.value,
                        judge_id=judge_id,
                        requested_at=asked + timedelta(microseconds=index),
                    )
                )
        await uow.commit()
    return HumanBatch(batch.id, deadline, planned)


def judge_link_path(
    settings: Settings, batch_id: uuid.UUID, judge_id: str, expires_at: datetime
) -> str:
    """The path of a judge's page (`/judge/<token>`), signed with the settings' secret."""
    assert settings.judge_link_secret is not None
    token = sign_judge_link(
        JudgeLinkClaims(batch_id, judge_id, expires_at),
        settings.judge_link_secret.get_secret_value().encode("utf-8"),
    )
    return f"/judge/{token}"
