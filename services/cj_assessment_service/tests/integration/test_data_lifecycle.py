"""Where essay texts end, on the real database and broker: an operator's erasure of a batch (every
copy gone, answers arriving afterwards handled as late), the retention purge next to a running
batch, and the `cj:erase` scope of the erasure route."""

from __future__ import annotations

import json
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.application.ports import EssayRecord
from cj_assessment_service.domain.batch import BatchState
from cj_assessment_service.testing.harness import (
    CJRuntime,
    batch_in_state,
    newest_batch,
    outcome_events,
    running_service,
    submit,
)
from cj_assessment_service.testing.requests import (
    ScriptedJudge,
    batch_record,
    essays,
    judging,
    make_settings,
    request_envelope,
    unique_prefix,
    verdict,
)
from common_core.events.cj import CJAssessmentFailedV1, EssaySetReference, EssayToProcess
from common_core.events.llm import LLMComparisonRequestV1, LLMComparisonResultV1
from common_core.runtime.http_auth import sign_token
from common_core.testing import eventually
from common_core.topics import Topic

pytestmark = pytest.mark.integration


def _marked_essays(n: int, marker: str, prefix: str = "e") -> list[EssayToProcess]:
    return [
        EssayToProcess(essay_id=f"{prefix}{i}", text_content=f"{marker} essay {i}")
        for i in range(n)
    ]


async def _rows_holding(session: AsyncSession, marker: str) -> dict[str, int]:
    """Rows of every table of the database whose text (any column) contains `marker`."""
    tables = (
        await session.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        )
    ).scalars()
    found = {}
    for table in sorted(tables):
        count = await session.scalar(
            text(f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE :pattern'),
            {"pattern": f"%{marker}%"},
        )
        if count:
            found[table] = int(count)
    return found


async def _holding(service: CJRuntime, marker: str) -> dict[str, int]:
    async with service.sessions() as session:
        return await _rows_holding(session, marker)


async def _late_callbacks() -> float:
    return (
        REGISTRY.get_sample_value("huleedu_cj_callbacks_processed_total", {"outcome": "late"})
        or 0.0
    )


async def _orphan_callbacks() -> float:
    return REGISTRY.get_sample_value("huleedu_cj_orphan_callbacks_total") or 0.0


class TestErasure:
    async def test_erasing_a_running_batch_removes_every_copy_and_late_answers_keep_it_gone(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        marker = f"erase-me-{uuid.uuid4().hex}"
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy=lambda _r, _i: None) as judge,
        ):
            client = service.app.test_client()
            body = "".join(
                json.dumps(e.model_dump()) + "\n" for e in _marked_essays(6, marker)
            ).encode()
            upload = await client.post(
                "/api/v1/essay-sets", data=body, headers={"Content-Type": "application/x-ndjson"}
            )
            receipt = await upload.get_json()
            request = request_envelope(settings, "erase-running", [])
            reference = EssaySetReference(essay_set_id=uuid.UUID(receipt["essay_set_id"]))
            data = request.data.model_copy(update={"essay_set": reference})
            await submit(service, request.model_copy(update={"data": data}))
            await eventually(lambda: _requests_seen(judge), until=lambda n: n > 0)
            batch = await newest_batch(service, "erase-running")
            assert batch is not None
            assert batch.state == BatchState.WAITING_CALLBACKS
            before = await _holding(service, marker)

            erased = await client.post(f"/api/v1/erasures/batches/{batch.id}")
            late_before = await _late_callbacks()
            # The judge answers everything it was asked, after the erasure: late callbacks.
            for item in list(judge.requests):
                await judge.answer(item, verdict(item.data))
            await eventually(
                _late_callbacks, until=lambda n: n >= late_before + len(judge.requests)
            )
            # The consumer is still consuming after them: an answer nobody asked for is counted.
            orphans_before = await _orphan_callbacks()
            stray = judge.requests[0]
            stray_data = stray.data.model_copy(update={"request_id": uuid.uuid4()})
            await judge.answer(stray.model_copy(update={"data": stray_data}), verdict(stray_data))
            await eventually(_orphan_callbacks, until=lambda n: n > orphans_before)
            again = await client.post(f"/api/v1/erasures/batches/{batch.id}")
            after = await _holding(service, marker)
            cancelled = await newest_batch(service, "erase-running")
            failed = await outcome_events(
                settings, CJAssessmentFailedV1, Topic.CJ_ASSESSMENT_FAILED, expected=1
            )
            async with service.sessions() as session:
                audit = (
                    await session.execute(
                        text(
                            "SELECT requested_by, batch_state, erased FROM cj_erasures "
                            "WHERE batch_id = :id ORDER BY requested_at"
                        ),
                        {"id": batch.id},
                    )
                ).all()
        # Before: the essays, the set's essays and the comparison requests in the outbox.
        assert {"cj_essays", "cj_essay_set_essays", "event_outbox"} <= set(before)
        assert erased.status_code == 200
        first = await erased.get_json()
        assert first["batch_id"] == str(batch.id)
        assert first["already_erased"] is False
        assert first["erased"] == {
            "essay_texts": 6,
            "outbox_requests": before["event_outbox"],
            "essay_sets": 1,
            "essay_set_texts": 6,
            "batches_cancelled": 1,
        }
        assert after == {}
        assert cancelled is not None
        assert cancelled.state == BatchState.CANCELLED
        assert cancelled.texts_purged_at is not None
        assert cancelled.completed == 0  # the answers came late and changed nothing
        assert [f.data.error_detail.code for f in failed] == ["cancelled"]
        second = await again.get_json()
        assert second["already_erased"] is True
        assert set(second["erased"].values()) == {0}
        assert [(r.requested_by, r.batch_state) for r in audit] == [
            (None, "WAITING_CALLBACKS"),
            (None, "CANCELLED"),
        ]
        assert marker not in json.dumps([r.erased for r in audit])

    async def test_erasing_an_unknown_batch_is_404(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        settings = make_settings(database_url, kafka_bootstrap_servers, unique_prefix())
        async with running_service(settings) as service:
            client = service.app.test_client()
            missing = await client.post(f"/api/v1/erasures/batches/{uuid.uuid4()}")
            bad = await client.post("/api/v1/erasures/batches/not-a-uuid")
        assert missing.status_code == 404
        assert (await missing.get_json())["code"] == "batch_not_found"
        assert bad.status_code == 400


class TestErasureScope:
    async def test_only_a_token_with_cj_erase_may_erase_and_its_subject_is_audited(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        secret = "s" * 48
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            auth_jwt_secret=secret,
        )

        def token(*scopes: str) -> dict[str, str]:
            signed = sign_token(
                secret,
                subject="operator-7",
                scopes=scopes,
                issuer=settings.auth_issuer,
                audience=settings.auth_audience,
            )
            return {"Authorization": f"Bearer {signed}"}

        batch = batch_record(state=BatchState.COMPLETED)
        async with running_service(settings) as service:
            async with service.sessions() as session:
                uow = PostgresUnitOfWork(session)
                await uow.batches.add(batch)
                await uow.essays.add(batch.id, [EssayRecord(0, "e0", "kept until erased")])
                await session.commit()
            client = service.app.test_client()
            path = f"/api/v1/erasures/batches/{batch.id}"
            anonymous = await client.post(path)
            writer = await client.post(path, headers=token("cj:read", "cj:write"))
            operator = await client.post(path, headers=token("cj:erase"))
            async with service.sessions() as session:
                requested_by = await session.scalar(
                    text("SELECT requested_by FROM cj_erasures WHERE batch_id = :id"),
                    {"id": batch.id},
                )
                held = await _rows_holding(session, "kept until erased")
        assert anonymous.status_code == 401
        assert writer.status_code == 403
        assert (await writer.get_json())["code"] == "insufficient_scope"
        assert operator.status_code == 200
        assert (await operator.get_json())["erased"]["essay_texts"] == 1
        assert requested_by == "operator-7"
        assert held == {}


class TestRetentionPurge:
    async def test_purge_blanks_finished_batches_and_leaves_a_running_batch_all_it_needs(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        marker = f"purge-{uuid.uuid4().hex}"
        settings = make_settings(
            database_url,
            kafka_bootstrap_servers,
            unique_prefix(),
            essay_text_retention_seconds=0.0,
            essay_text_purge_interval_seconds=0.2,
        )
        release_running = False

        def policy(request: LLMComparisonRequestV1, _index: int) -> LLMComparisonResultV1 | None:
            finished = request.essay_a.essay_id.startswith("f")
            return verdict(request) if finished or release_running else None

        purged_before = (
            REGISTRY.get_sample_value(
                "huleedu_retention_rows_purged_total", {"kind": "cj_essay_texts"}
            )
            or 0.0
        )
        async with (
            running_service(settings) as service,
            judging(settings, service.producer, policy=policy) as judge,
        ):
            await submit(
                service, request_envelope(settings, "running", _marked_essays(12, marker, "r"))
            )
            await submit(service, request_envelope(settings, "finished", essays(5, "f")))
            finished = await batch_in_state(service, "finished", BatchState.COMPLETED)
            await eventually(
                lambda: newest_batch(service, "finished"),
                until=lambda b: b is not None and b.texts_purged_at is not None,
            )
            running = await newest_batch(service, "running")
            held_while_running = await _holding(service, marker)
            async with service.sessions() as session:
                finished_texts = (
                    (
                        await session.execute(
                            text("SELECT text_content FROM cj_essays WHERE batch_id = :id"),
                            {"id": finished.id},
                        )
                    )
                    .scalars()
                    .all()
                )
            # The running batch goes on: its answers come, it plans more pairs (reading their
            # texts), scores and completes.
            release_running = True
            for item in [r for r in judge.requests if r.data.essay_a.essay_id.startswith("r")]:
                await judge.answer(item, verdict(item.data))
            completed = await batch_in_state(service, "running", BatchState.COMPLETED)
            purged_after = REGISTRY.get_sample_value(
                "huleedu_retention_rows_purged_total", {"kind": "cj_essay_texts"}
            )
        assert running is not None
        assert running.state == BatchState.WAITING_CALLBACKS
        assert running.texts_purged_at is None
        assert held_while_running.get("cj_essays") == 12
        assert list(finished_texts) == [""] * 5
        assert completed.waves > running.waves
        assert completed.completed > running.planned
        assert purged_after is not None
        assert purged_after - purged_before >= 5


async def _requests_seen(judge: ScriptedJudge) -> int:
    return len(judge.requests)
