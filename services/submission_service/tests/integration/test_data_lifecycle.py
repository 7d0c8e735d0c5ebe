"""Learner data lifecycle through the real service (PostgreSQL, Kafka): an operator's erasure
leaves no copy of a learner's texts in any table, repeats as a no-op, needs its scope, and stops
scoring in flight without the late results crashing the consumer or bringing anything back; the
retention purge empties finished answers only, never one whose scoring is still running."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core.runtime.outbox import event_outbox
from common_core.testing import eventually
from submission_service.adapters.tables import (
    assessment_responses,
    assessment_scores,
    assessments,
    learner_erasures,
    scoring_jobs,
)
from submission_service.application.data_lifecycle import LifecycleTransactions
from submission_service.entrypoints.periodic import PURGED_KIND, AnswerTextPurge
from submission_service.testing.harness import (
    ServiceUnderTest,
    anonymous_headers,
    operator_headers,
    rubric_result,
    user_headers,
    user_token,
)

pytestmark = pytest.mark.integration

ESSAY = (
    "Schools should move to digital textbooks gradually. They are cheaper to update, so the "
    "facts stay current. But not every family has a device at home, so schools must lend them."
)


def _marker() -> str:
    return f"learnertext{uuid.uuid4().hex}"


async def _scored_answer(service: ServiceUnderTest, headers: dict[str, str], marker: str) -> str:
    """A completed answer outside any assessment, scored with feedback quoting it."""
    created = await service.answer(headers, "m1", "q1", answer_text=f"My answer {marker}.")
    response_id = str(created["id"])
    patched = await service.client.patch(
        f"/api/assessments/responses/{response_id}",
        json={"completed_at": "2026-11-22T09:00:00Z"},
        headers=headers,
    )
    assert patched.status_code == 200
    [request] = await _rubric_requests(service.engine, response_id)
    result = rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
    await service.send_rubric_result(result.model_copy(update={"feedback": f"You wrote {marker}"}))
    await eventually(lambda: _score_count(service.engine, response_id), what="answer scored")
    return response_id


async def _essay_in_scoring(
    service: ServiceUnderTest, headers: dict[str, str], marker: str
) -> tuple[str, str]:
    """An assessment submitted with an essay whose gpt and rag requests await their results;
    returns (assessment id, essay response id)."""
    created = await service.answer(
        headers, "argument", "short-essay", answer_text=f"{ESSAY} {marker}"
    )
    assessment_id = await service.start(headers)
    submitted = await service.client.post(
        f"/api/assessments/{assessment_id}/submit",
        json={},
        headers={**headers, "Idempotency-Key": assessment_id},
    )
    assert submitted.status_code == 202
    return assessment_id, str(created["id"])


async def _rubric_requests(engine: AsyncEngine, response_id: str) -> list[dict[str, Any]]:
    """The rubric requests staged in the outbox for an answer (their event data)."""
    async with engine.connect() as connection:
        payloads = await connection.execute(
            select(event_outbox.c.payload).where(event_outbox.c.message_key == response_id)
        )
        events = [json.loads(p)["data"] for p in payloads.scalars()]
    return [data for data in events if "answer_text" in data]


async def _score_count(engine: AsyncEngine, response_id: str) -> int:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(assessment_scores.c.id).where(
                assessment_scores.c.response_id == uuid.UUID(response_id)
            )
        )
        return len(rows.all())


async def _tables_holding(engine: AsyncEngine, needle: str) -> dict[str, int]:
    """Rows of every table of the submission database (outbox and inbox included) whose JSON
    form contains `needle`, by table."""
    found: dict[str, int] = {}
    async with engine.connect() as connection:
        tables = await connection.execute(
            text(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        )
        names = list(tables.scalars())
        for name in names:
            count = await connection.execute(
                text(
                    f'SELECT count(*) FROM "{name}" t WHERE strpos(to_jsonb(t)::text, :needle) > 0'
                ),
                {"needle": needle},
            )
            if hits := count.scalar_one():
                found[name] = hits
    assert {"event_outbox", "processed_events", "assessment_responses"} <= set(names), names
    return found


async def _response(engine: AsyncEngine, response_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                select(assessment_responses).where(
                    assessment_responses.c.id == uuid.UUID(response_id)
                )
            )
        ).one()


async def _jobs(engine: AsyncEngine, response_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(scoring_jobs).where(scoring_jobs.c.response_id == uuid.UUID(response_id))
        )
        return {r.job_type: r for r in rows}


async def _assessment_status(engine: AsyncEngine, assessment_id: str) -> str:
    async with engine.connect() as connection:
        status = await connection.execute(
            select(assessments.c.status).where(assessments.c.id == uuid.UUID(assessment_id))
        )
        return str(status.scalar_one())


async def _erase(service: ServiceUnderTest, body: dict[str, str]) -> dict[str, Any]:
    reply = await service.client.post(
        "/api/erasures/learners", json=body, headers=operator_headers()
    )
    assert reply.status_code == 200, await reply.get_data()
    answer: dict[str, Any] = await reply.get_json()
    return answer


class TestErasure:
    async def test_every_copy_of_the_learners_texts_is_gone_and_a_repeat_erases_nothing(
        self, service: ServiceUnderTest
    ) -> None:
        learner, marker = f"learner-{uuid.uuid4()}", _marker()
        headers = user_headers(learner)
        other_marker = _marker()
        await service.answer(
            user_headers(f"other-{uuid.uuid4()}"), "m1", "q1", answer_text=other_marker
        )
        await _scored_answer(service, headers, marker)
        await _essay_in_scoring(service, headers, marker)
        before = await _tables_holding(service.engine, marker)
        assert {"assessment_responses", "assessment_scores", "event_outbox"} <= set(before)

        first = await _erase(service, {"user_id": learner})

        assert await _tables_holding(service.engine, marker) == {}
        assert first["subject"] == "user_id"
        assert first["already_erased"] is False
        assert first["erased"]["answer_texts"] == 2
        assert first["erased"]["score_feedback"] == 1
        assert first["erased"]["outbox_rows"] == 3  # the answer's request, the essay's gpt and rag
        assert first["erased"]["outbox_feedback"] == 1  # the answer's score event
        assert first["erased"]["idempotency_records"] == 1
        second = await _erase(service, {"user_id": learner})
        assert second["already_erased"] is True
        assert set(second["erased"].values()) == {0}
        assert second["audit_id"] != first["audit_id"]
        async with service.engine.connect() as connection:
            audits = (
                await connection.execute(
                    select(learner_erasures).where(
                        learner_erasures.c.id.in_(
                            [uuid.UUID(first["audit_id"]), uuid.UUID(second["audit_id"])]
                        )
                    )
                )
            ).all()
        assert {a.operator_subject for a in audits} == {"operator-1"}
        assert len({a.subject_hash for a in audits}) == 1
        assert learner not in json.dumps([a._asdict() for a in audits], default=str)
        assert await _tables_holding(service.engine, other_marker) == {"assessment_responses": 1}

    async def test_scoring_results_arriving_after_the_erasure_are_ignored(
        self, service: ServiceUnderTest
    ) -> None:
        token, marker = uuid.uuid4(), _marker()
        assessment_id, essay_id = await _essay_in_scoring(service, anonymous_headers(token), marker)
        requests = await _rubric_requests(service.engine, essay_id)
        assert len(requests) == 2  # gpt and rag

        erased = await _erase(service, {"anonymous_token": str(token)})
        assert erased["subject"] == "anonymous_token"
        assert erased["erased"]["outbox_rows"] == 2
        for request in requests:
            await service.send_rubric_result(
                rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
            )
        # Published after the late results on the same partition: once it is scored, the
        # consumer has handled them and is still running.
        await _scored_answer(service, anonymous_headers(), _marker())

        jobs = await _jobs(service.engine, essay_id)
        assert {t: j.status for t, j in jobs.items()} == {
            "gpt": "failed",
            "rag": "failed",
            "fusion": "failed",
        }
        assert jobs["gpt"].error["code"] == "answer_erased"
        assert await _score_count(service.engine, essay_id) == 0
        essay = await _response(service.engine, essay_id)
        assert (essay.answer_text, essay.text_removed_by) == ("", "erasure")
        assert await _assessment_status(service.engine, assessment_id) == "completed"
        assert await _tables_holding(service.engine, marker) == {}

    async def test_operators_without_the_scope_and_bad_subjects_are_refused(
        self, service: ServiceUnderTest
    ) -> None:
        path = "/api/erasures/learners"
        body = {"user_id": "someone"}
        unauthenticated = await service.client.post(path, json=body)
        assert unauthenticated.status_code == 401
        without_scope = await service.client.post(
            path, json=body, headers=operator_headers(scope="submission:read")
        )
        assert without_scope.status_code == 403
        assert (await without_scope.get_json())["code"] == "insufficient_scope"
        assert 'scope="submission:erase"' in without_scope.headers["WWW-Authenticate"]
        learner = await service.client.post(
            path, json=body, headers={"Authorization": f"Bearer {user_token('someone')}"}
        )
        assert learner.status_code == 403

        cases = [
            ({"user_id": "a", "anonymous_token": str(uuid.uuid4())}, "exactly_one_subject"),
            ({}, "exactly_one_subject"),
            ({"anonymous_token": "not-a-uuid"}, "invalid_anonymous_token"),
            ({"user_id": ""}, "invalid_user_id"),
            ({"user": "a"}, "unknown_field"),
        ]
        for bad, reason in cases:
            reply = await service.client.post(path, json=bad, headers=operator_headers())
            error = await reply.get_json()
            assert (reply.status_code, error["code"]) == (400, reason), bad
            assert error["field"] in ("user_id", "anonymous_token", "user"), error


class TestRetention:
    async def test_a_purge_during_scoring_empties_only_finished_answers(
        self, service: ServiceUnderTest
    ) -> None:
        finished_marker, running_marker = _marker(), _marker()
        finished_id = await _scored_answer(service, anonymous_headers(), finished_marker)
        running_headers = anonymous_headers()
        assessment_id, essay_id = await _essay_in_scoring(service, running_headers, running_marker)
        draft = await service.answer(running_headers, "m1", "q9", answer_text=running_marker)
        purge = AnswerTextPurge(
            await service.runtime.container.get(LifecycleTransactions),
            retention=timedelta(0),
            batch_size=1,  # one answer per transaction: the loop below takes several
            interval_seconds=60,
        )
        purged_before = _purged_total()

        while await purge.run_pass():
            pass

        assert _purged_total() > purged_before
        finished = await _response(service.engine, finished_id)
        assert (finished.answer_text, finished.text_removed_by) == ("", "retention")
        assert await _score_count(service.engine, finished_id) == 1
        essay = await _response(service.engine, essay_id)
        assert running_marker in essay.answer_text
        assert essay.text_removed_at is None
        assert (await _response(service.engine, str(draft["id"]))).text_removed_at is None
        assert {j.status for j in (await _jobs(service.engine, essay_id)).values()} == {"queued"}

        for request in await _rubric_requests(service.engine, essay_id):
            await service.send_rubric_result(
                rubric_result(uuid.UUID(request["request_id"]), request["request_metadata"])
            )
        await eventually(
            lambda: _assessment_status(service.engine, assessment_id),
            until=lambda status: status == "completed",
            what="assessment completed",
        )
        while await purge.run_pass():
            pass
        essay = await _response(service.engine, essay_id)
        assert (essay.answer_text, essay.text_removed_by) == ("", "retention")
        assert await _score_count(service.engine, essay_id) == 3  # gpt, rag and fused stay
        assert running_marker in (await _response(service.engine, str(draft["id"]))).answer_text


def _purged_total() -> float:
    value = REGISTRY.get_sample_value("huleedu_retention_rows_purged_total", {"kind": PURGED_KIND})
    return value or 0.0
