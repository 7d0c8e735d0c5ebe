"""An essay answer's four stages through the real service (PostgreSQL, Kafka): each job's state
changes only when the thing it names happens, the rag request carries the passages full-text
search retrieved, fusion combines the stages, and without reference material rag is skipped.

The service's workers are started one at a time here, so the states before each step are seen:
no outbox relay yet (requests staged: `queued`), the relay (requests delivered to the provider's
topic: `in_progress`), then the result consumer (`completed`)."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMRubricResultV1
from common_core.runtime.kernel import ServiceRuntime, service_runtime
from common_core.runtime.outbox import event_outbox
from common_core.testing import eventually
from common_core.topics import Topic
from submission_service.adapters.postgres_reference import PostgresReferencePassages
from submission_service.adapters.tables import assessment_scores, scoring_jobs
from submission_service.application.ports import Transactions
from submission_service.application.scoring import RubricPolicy, record_rubric_result
from submission_service.config import Settings
from submission_service.entrypoints.runtime import (
    SERVICE,
)
from submission_service.testing.harness import (
    ServiceUnderTest,
    events_for_key,
    rubric_result,
    settings_for_tests,
    user_headers,
)

pytestmark = pytest.mark.integration

SHIPPED = Path(__file__).resolve().parents[2] / "content" / "intro-writing.json"
ANSWER = (
    "Schools should move to digital textbooks gradually. They are cheaper to update, so the "
    "facts stay current. But not every family has a device or fast internet at home, so the "
    "school must lend devices and keep printed copies. Screens can also distract students."
)


@dataclass
class Stack:
    """The service with its workers started on demand."""

    service: ServiceUnderTest
    runtime: ServiceRuntime[Settings]
    bootstrap: str
    tasks: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Run a worker of the service (`relay` or `consumer`) from now on."""
        if name not in self.tasks:
            self.tasks[name] = asyncio.ensure_future(self.runtime.workers[name].run())


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped definition and a copy of it without reference material."""
    directory = tmp_path_factory.mktemp("content")
    shutil.copy(SHIPPED, directory / SHIPPED.name)
    bare = json.loads(SHIPPED.read_text("utf-8"))
    bare["id"] = "bare-writing"
    del bare["reference_passages"]
    (directory / "bare-writing.json").write_text(json.dumps(bare), "utf-8")
    return directory


@pytest.fixture(scope="module")
async def stack(
    database_url: str, kafka_bootstrap_servers: str, content_dir: Path
) -> AsyncIterator[Stack]:
    settings: Settings = settings_for_tests(
        database_url, kafka_bootstrap_servers, content_dir=content_dir
    )
    async with service_runtime(SERVICE, settings) as runtime:
        service = ServiceUnderTest(
            runtime, runtime.app.test_client(), runtime.engine, runtime.producer
        )
        running = Stack(service, runtime, kafka_bootstrap_servers)
        try:
            yield running
        finally:
            runtime.stop()
            tasks = list(running.tasks.values())
            if tasks:
                await asyncio.wait(tasks, timeout=15)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _submit_essay(
    stack: Stack, headers: dict[str, str], definition_id: str
) -> tuple[str, str]:
    """Answer the essay, start an attempt and submit it; returns (assessment, response) ids."""
    created = await stack.service.answer(headers, "argument", "short-essay", answer_text=ANSWER)
    response_id = str(created["id"])
    aid = await stack.service.start(headers, definition_id)
    submitted = await stack.service.client.post(
        f"/api/assessments/{aid}/submit", json={}, headers={**headers, "Idempotency-Key": aid}
    )
    assert submitted.status_code == 202
    return aid, response_id


def _stages(status: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in status["stages"]}


def _jobs(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {j["job_type"]: j for j in status["jobs"]}


async def _requests(stack: Stack, response_id: str, expected: int) -> dict[str, dict[str, Any]]:
    events = await events_for_key(
        stack.bootstrap,
        stack.service.topic(Topic.LLM_RUBRIC_REQUESTED),
        response_id,
        expected=expected,
    )
    return {e["data"]["request_metadata"]["job_type"]: e["data"] for e in events}


async def _answer(stack: Stack, request: dict[str, Any], overall: float, cite: bool) -> None:
    result = rubric_result(
        uuid.UUID(request["request_id"]), request["request_metadata"], overall=overall
    )
    passages = [p["passage_id"] for p in request.get("reference_passages", [])]
    update = {"citations": passages[:2] if cite else []}
    await stack.service.send_rubric_result(
        LLMRubricResultV1.model_validate({**result.model_dump(mode="json"), **update})
    )


class TestStagesThroughTheService:
    async def test_each_state_changes_only_when_its_event_happens(self, stack: Stack) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        aid, response_id = await _submit_essay(stack, headers, "intro-writing")

        # Staged in the outbox, nothing delivered: every essay job is queued.
        status = await stack.service.status(headers, aid)
        assert {s["name"]: s["weight"] for s in status["stages"]} == {
            "rule_score": 0.2,
            "gpt": 0.3,
            "rag": 0.3,
            "fusion": 0.2,
        }
        assert _stages(status) == {
            "rule_score": "completed",
            "gpt": "queued",
            "rag": "queued",
            "fusion": "queued",
        }
        assert {t: j["status"] for t, j in _jobs(status).items()} == {
            "gpt": "queued",
            "rag": "queued",
            "fusion": "queued",
        }
        assert status["progress"] == pytest.approx(0.2)

        # The relay delivers both requests to the provider's topic: in progress; fusion waits.
        stack.start("relay")
        status = await eventually(
            lambda: stack.service.status(headers, aid),
            until=lambda s: (
                _stages(s)["gpt"] == "in_progress" and _stages(s)["rag"] == "in_progress"
            ),
            what="both requests delivered",
        )
        assert _stages(status)["fusion"] == "queued"
        requests = await _requests(stack, response_id, expected=2)
        assert set(requests) == {"gpt", "rag"}
        assert requests["gpt"].get("reference_passages", []) == []
        rag_passages = [p["passage_id"] for p in requests["rag"]["reference_passages"]]
        # Retrieved for the question and this answer: the key points it touches come first.
        assert 1 <= len(rag_passages) <= stack.runtime.settings.rag_top_passages
        assert "kp-access-and-equity" in rag_passages

        # gpt answers: only gpt completes.
        stack.start("consumer")
        await _answer(stack, requests["gpt"], 4.0, cite=False)
        status = await eventually(
            lambda: stack.service.status(headers, aid),
            until=lambda s: _stages(s)["gpt"] == "completed",
            what="gpt completed",
        )
        assert _stages(status)["rag"] == "in_progress"
        assert _stages(status)["fusion"] == "queued"
        assert status["progress"] == pytest.approx(0.5)

        # rag answers: fusion runs in the same transaction and the assessment completes.
        await _answer(stack, requests["rag"], 2.0, cite=True)
        status = await eventually(
            lambda: stack.service.status(headers, aid),
            until=lambda s: s["status"] == "completed",
            what="assessment completed",
        )
        assert set(_stages(status).values()) == {"completed"}
        assert status["progress"] == 1.0
        [essay] = status["result"]["essays"]
        fusion = essay["fusion"]
        rule = essay["rule_score"]["score"]
        assert fusion["overall"] == pytest.approx(0.2 * rule + 0.4 * 4.0 + 0.4 * 2.0, abs=1e-3)
        assert fusion["disagreement"] is True  # 4 against 2
        assert fusion["citations"] == rag_passages[:2]
        assert _jobs(status)["rag"]["result"]["citations"] == rag_passages[:2]

        [scored] = await events_for_key(
            stack.bootstrap, stack.service.topic(Topic.ASSESSMENT_SCORED), response_id
        )
        assert scored["data"]["stage"] == "fusion"
        assert scored["data"]["overall"] == fusion["overall"]
        assert {p["stage"] for p in scored["data"]["fusion"]["parts"]} == {
            "rule_score",
            "gpt",
            "rag",
        }

    async def test_without_reference_material_rag_is_skipped_and_says_so(
        self, stack: Stack
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        aid, response_id = await _submit_essay(stack, headers, "bare-writing")
        status = await stack.service.status(headers, aid)
        rag = _jobs(status)["rag"]
        assert rag["status"] == "skipped"
        assert "no reference material" in rag["note"]
        assert _stages(status)["rag"] == "skipped"

        stack.start("relay")
        stack.start("consumer")
        requests = await _requests(stack, response_id, expected=1)
        assert set(requests) == {"gpt"}  # no rag request was sent
        await _answer(stack, requests["gpt"], 5.0, cite=False)
        status = await eventually(
            lambda: stack.service.status(headers, aid),
            until=lambda s: s["status"] == "completed",
            what="assessment completed without rag",
        )
        [essay] = status["result"]["essays"]
        parts = {p["stage"]: p for p in essay["fusion"]["parts"]}
        assert parts["rag"]["status"] == "skipped"
        assert parts["rag"]["weight"] == 0.0
        assert parts["gpt"]["weight"] == pytest.approx(2 / 3, abs=1e-4)
        assert essay["fusion"]["degraded"] is True
        assert status["result"]["degraded"] is True
        assert status["progress"] == 1.0


class TestConcurrentResults:
    async def test_gpt_and_rag_results_committed_together_fuse_exactly_once(
        self, stack: Stack
    ) -> None:
        headers = user_headers(f"learner-{uuid.uuid4()}")
        aid, response_id = await _submit_essay(stack, headers, "intro-writing")
        async with stack.service.engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(scoring_jobs.c.job_type, scoring_jobs.c.request_id).where(
                        scoring_jobs.c.assessment_id == uuid.UUID(aid),
                        scoring_jobs.c.request_id.is_not(None),
                    )
                )
            ).all()
        assert {r.job_type for r in rows} == {"gpt", "rag"}

        transactions = await stack.runtime.container.get(Transactions)
        policy = await stack.runtime.container.get(RubricPolicy)

        async def deliver(request_id: uuid.UUID) -> None:
            envelope = EventEnvelope[LLMRubricResultV1](
                event_type="rubric_result",
                source_service="llm_provider_service",
                correlation_id=uuid.uuid4(),
                data=rubric_result(request_id, {}, overall=3.0),
            )
            async with transactions() as uow:
                await record_rubric_result(
                    uow, envelope, consumer="concurrency-test", policy=policy
                )

        # Two transactions at once, as two consumer instances would run them.
        await asyncio.gather(*(deliver(r.request_id) for r in rows))

        status = await stack.service.status(headers, aid)
        assert status["status"] == "completed"
        assert _jobs(status)["fusion"]["status"] == "completed"
        async with stack.service.engine.connect() as connection:
            fused_scores = (
                await connection.execute(
                    select(func.count()).where(
                        assessment_scores.c.response_id == uuid.UUID(response_id),
                        assessment_scores.c.score_data["stage"].astext == "fusion",
                    )
                )
            ).scalar_one()
            announced = (
                await connection.execute(
                    select(func.count()).where(
                        event_outbox.c.message_key == response_id,
                        event_outbox.c.topic == stack.service.topic(Topic.ASSESSMENT_SCORED),
                    )
                )
            ).scalar_one()
        assert (fused_scores, announced) == (1, 1)


class TestRetrieval:
    async def test_the_passages_a_question_and_answer_are_about_rank_first(
        self, stack: Stack
    ) -> None:
        async with (
            stack.service.engine.connect() as connection,
            AsyncSession(bind=connection) as session,
        ):
            store = PostgresReferencePassages(session)
            access = await store.retrieve_passages(
                "intro-writing",
                "short-essay",
                ["families", "device", "internet", "home", "lend"],
                2,
            )
            screens = await store.retrieve_passages(
                "intro-writing", "short-essay", ["screens", "distract", "games"], 2
            )
            nothing = await store.retrieve_passages(
                "intro-writing", "short-essay", ["volcano", "magma"], 2
            )
            other_question = await store.retrieve_passages(
                "intro-writing", "thesis-definition", ["device", "internet"], 2
            )
            bare = await store.retrieve_passages(
                "bare-writing", "short-essay", ["device", "internet"], 2
            )
        assert access[0].passage_id == "kp-access-and-equity"
        assert access[0].rank > 0
        assert screens[0].passage_id == "kp-learning-and-attention"
        # No match: the question's own material in definition order, ranked 0.
        assert [p.passage_id for p in nothing] == ["textbooks-course-text", "kp-cost-and-updates"]
        assert all(p.rank == 0.0 for p in nothing)
        assert other_question == []
        assert bare == []

    async def test_the_index_is_a_gin_index_on_a_tsvector(self, stack: Stack) -> None:
        async with stack.service.engine.connect() as connection:
            index = (
                await connection.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes "
                        "WHERE indexname = 'ix_reference_passages_search'"
                    )
                )
            ).scalar_one()
            column_type = (
                await connection.execute(
                    text(
                        "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'reference_passages' AND column_name = 'search'"
                    )
                )
            ).scalar_one()
        assert "USING gin (search)" in index
        assert column_type == "tsvector"
