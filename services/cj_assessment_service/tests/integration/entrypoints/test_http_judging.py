"""The human judges' page and the organiser's judge API, on the real database (the instance's
workers are not running: a staged verdict stays in the outbox, where it is counted)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from structlog.testing import capture_logs

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.adapters.tables import cj_essays
from cj_assessment_service.application.human_judging import HumanJudgingUseCases
from cj_assessment_service.domain.judge_links import verify_judge_link
from cj_assessment_service.entrypoints.runtime import SERVICE
from cj_assessment_service.testing.harness import CJRuntime
from cj_assessment_service.testing.human_judges import (
    JUDGE_LINK_SECRET,
    PROMPT,
    judge_link_path,
    seed_human_batch,
)
from cj_assessment_service.testing.requests import batch_record, make_settings, unique_prefix
from common_core.events.envelope import decode_event
from common_core.events.llm import ComparisonWinner, JudgeKind, LLMComparisonResultV1
from common_core.runtime.kernel import service_runtime
from common_core.runtime.outbox import event_outbox

pytestmark = pytest.mark.integration

TEXTS = ["First essay <script>alert('x')</script> & more", "Second essay.", "Third essay."]


@contextlib.asynccontextmanager
async def judging_service(
    database_url: str, bootstrap: str, **overrides: Any
) -> AsyncIterator[CJRuntime]:
    """An instance with its app and database, no workers (nothing leaves the outbox)."""
    values = {"judge_link_secret": JUDGE_LINK_SECRET, **overrides}
    settings = make_settings(database_url, bootstrap, unique_prefix(), **values)
    async with service_runtime(SERVICE, settings) as runtime:
        yield runtime


async def staged_verdicts(service: CJRuntime, batch_id: uuid.UUID) -> list[LLMComparisonResultV1]:
    """The comparison results staged on the callback topic for a batch."""
    async with service.sessions() as session:
        rows = (
            await session.execute(
                select(event_outbox.c.payload).where(
                    event_outbox.c.topic == service.settings.callback_topic,
                    event_outbox.c.message_key == str(batch_id),
                )
            )
        ).scalars()
        return [decode_event(row, LLMComparisonResultV1).data for row in rows]


def _outcomes(*outcomes: str) -> list[float]:
    """`huleedu_cj_human_verdicts_total` of each outcome."""
    return [
        REGISTRY.get_sample_value("huleedu_cj_human_verdicts_total", {"outcome": o}) or 0.0
        for o in outcomes
    ]


def _link(service: CJRuntime, batch_id: uuid.UUID, judge_id: str, deadline: datetime) -> str:
    return judge_link_path(service.settings, batch_id, judge_id, deadline)


class TestJudgePage:
    async def test_the_page_shows_the_next_pair_escaped_without_essay_ids(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1), (1, 2)]})
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            client = service.app.test_client()
            response = await client.get(link)
            html = await response.get_data(as_text=True)
            script = await client.get("/judge-static/judging.js")
            other = await client.get("/judge-static/secrets.txt")
        assert response.status_code == 200
        assert script.status_code == 200
        assert script.headers["Content-Type"].startswith("text/javascript")
        assert other.status_code == 404
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
        assert "<script>alert" not in html
        assert "essay-id-" not in html
        assert PROMPT in html
        for element in ('id="essay-a"', 'id="choose-b"', 'id="confirm"', 'id="skip"'):
            assert element in html
        assert "Judged 0 of 2" in html
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]

    async def test_a_verdict_is_staged_once_as_a_human_comparison_result(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1)]})
            pair = seeded.pairs["t1"][0]
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            client = service.app.test_client()
            form = {"pair_id": str(pair.id), "winner": "B", "shown_ms": "4200"}
            before = _outcomes("accepted", "duplicate")
            first = await client.post(f"{link}/verdicts", form=form)
            again = await client.post(f"{link}/verdicts", form=form)
            after = _outcomes("accepted", "duplicate")
            verdicts = await staged_verdicts(service, seeded.batch_id)
            done = await (await client.get(link)).get_data(as_text=True)
        assert first.status_code == 303
        assert first.headers["Location"] == link
        assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1]
        assert again.status_code == 409
        assert len(verdicts) == 1
        verdict = verdicts[0]
        assert verdict.request_id == pair.request_id
        assert verdict.winner == ComparisonWinner.ESSAY_B
        assert (verdict.judge_kind, verdict.judge_id) == (JudgeKind.HUMAN, "t1")
        assert (verdict.provider, verdict.latency_ms) == ("human", 4200)
        assert verdict.request_metadata == {
            "batch_id": str(seeded.batch_id),
            "pair_id": str(pair.id),
        }
        assert 'id="done-message"' in done
        assert "All your comparisons are judged. Thank you." in done

    async def test_another_judges_pair_is_not_found_and_stages_nothing(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1)], "t2": [(1, 2)]})
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            client = service.app.test_client()
            theirs = await client.post(
                f"{link}/verdicts", form={"pair_id": str(seeded.pairs["t2"][0].id), "winner": "A"}
            )
            unknown = await client.post(
                f"{link}/verdicts", form={"pair_id": str(uuid.uuid4()), "winner": "A"}
            )
            garbage = await client.post(f"{link}/skips", form={"pair_id": "nope"})
            verdicts = await staged_verdicts(service, seeded.batch_id)
        assert [theirs.status_code, unknown.status_code, garbage.status_code] == [404, 404, 404]
        assert await theirs.get_data() == await unknown.get_data()
        assert verdicts == []

    async def test_tampered_and_expired_links_are_refused(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1)]})
            pair_id = str(seeded.pairs["t1"][0].id)
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            expired = _link(service, seeded.batch_id, "t1", datetime.now(UTC) - timedelta(1))
            tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
            client = service.app.test_client()
            with capture_logs() as logs:
                bad = await client.post(
                    f"{tampered}/verdicts", form={"pair_id": pair_id, "winner": "A"}
                )
                old = await client.get(expired)
            verdicts = await staged_verdicts(service, seeded.batch_id)
        assert bad.status_code == 403
        assert "not valid" in await bad.get_data(as_text=True)
        assert old.status_code == 403
        assert "expired" in await old.get_data(as_text=True)
        assert verdicts == []
        assert link.split("/")[-1][:20] not in repr(logs)

    async def test_a_skipped_pair_comes_back_last(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1), (1, 2)]})
            first, second = seeded.pairs["t1"]
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            client = service.app.test_client()
            skipped = await client.post(f"{link}/skips", form={"pair_id": str(first.id)})
            shown = [await (await client.get(link)).get_data(as_text=True)]
            await client.post(f"{link}/verdicts", form={"pair_id": str(second.id), "winner": "A"})
            shown.append(await (await client.get(link)).get_data(as_text=True))
        assert skipped.status_code == 303
        assert str(second.id) in shown[0]
        assert str(first.id) in shown[1]
        assert "Judged 1 of 2" in shown[1]

    async def test_an_unexpected_failure_logs_no_token(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            seeded = await seed_human_batch(service, TEXTS, {"t1": [(0, 1)]})
            link = _link(service, seeded.batch_id, "t1", seeded.deadline)
            # A page whose essay is missing from the batch fails inside the route.
            async with service.sessions() as session:
                await session.execute(
                    cj_essays.delete().where(cj_essays.c.batch_id == seeded.batch_id)
                )
                await session.commit()
            with capture_logs() as logs:
                response = await service.app.test_client().get(link)
        assert response.status_code == 500
        assert [e["route"] for e in logs if e["event"] == "request_failed"] == ["/judge/<token>"]
        assert link.split("/")[-1] not in repr(logs)


class TestOrganiserApi:
    async def test_invite_once_then_list_links_that_verify(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(database_url, kafka_bootstrap_servers) as service:
            batch = batch_record()
            async with service.sessions() as session:
                uow = PostgresUnitOfWork(session)
                await uow.batches.add(batch)
                await uow.commit()
            deadline = (datetime.now(UTC) + timedelta(minutes=30)).replace(microsecond=0)
            body: dict[str, Any] = {
                "judges": [{"judge_id": "t1", "display_name": "Ms Lind"}],
                "share": 0.1,
                "deadline": deadline.isoformat(),
            }
            client = service.app.test_client()
            url = f"/api/v1/batches/{batch.id}"
            created = await client.post(f"{url}/human-judging", json=body)
            twice = await client.post(f"{url}/human-judging", json=body)
            listed = await client.get(f"{url}/judges")
            missing = await client.post(f"/api/v1/batches/{uuid.uuid4()}/human-judging", json=body)
            past = {**body, "deadline": (datetime.now(UTC) - timedelta(1)).isoformat()}
            other = batch_record()
            async with service.sessions() as session:
                uow = PostgresUnitOfWork(session)
                await uow.batches.add(other)
                await uow.commit()
            late = await client.post(f"/api/v1/batches/{other.id}/human-judging", json=past)
            twice_named = {**body, "judges": [body["judges"][0]] * 2}
            duplicate = await client.post(
                f"/api/v1/batches/{other.id}/human-judging", json=twice_named
            )
            nowhere = await client.post(
                f"/api/v1/batches/{uuid.uuid4()}/human-judging", json=twice_named
            )
            shapeless = await client.post(f"/api/v1/batches/{other.id}/human-judging", json=[])
            async with service.sessions() as session:
                stored = await PostgresUnitOfWork(session).batches.get(batch.id)
        assert created.status_code == 201
        assert twice.status_code == 409
        assert (await twice.get_json())["code"] == "human_judging_exists"
        assert missing.status_code == 404
        assert late.status_code == 400
        assert (await late.get_json())["field"] == "deadline"
        assert (duplicate.status_code, (await duplicate.get_json())["field"]) == (422, "judges")
        assert nowhere.status_code == 404
        assert (shapeless.status_code, (await shapeless.get_json())["field"]) == (422, "body")
        assert stored is not None
        assert stored.human_deadline == deadline
        assert stored.human_judging is not None
        assert [j.judge_id for j in stored.human_judging.judges] == ["t1"]
        judges = (await listed.get_json())["judges"]
        assert judges == (await created.get_json())["judges"]
        assert judges[0]["display_name"] == "Ms Lind"
        assert (judges[0]["assigned"], judges[0]["remaining"]) == (0, 0)
        token = judges[0]["link"].rsplit("/judge/", 1)[1]
        claims = verify_judge_link(token, JUDGE_LINK_SECRET.encode(), datetime.now(UTC))
        assert (claims.batch_id, claims.judge_id, claims.expires_at) == (batch.id, "t1", deadline)

    async def test_without_a_secret_human_judging_is_unavailable(
        self, database_url: str, kafka_bootstrap_servers: str
    ) -> None:
        async with judging_service(
            database_url, kafka_bootstrap_servers, judge_link_secret=None
        ) as service:
            client = service.app.test_client()
            page = await client.get("/judge/anything")
            api = await client.get(f"/api/v1/batches/{uuid.uuid4()}/judges")
            configured = HumanJudgingUseCases(service.settings).configured
        assert page.status_code == 503
        assert "not configured" in await page.get_data(as_text=True)
        assert api.status_code == 503
        assert "Retry-After" in api.headers
        assert configured is False
