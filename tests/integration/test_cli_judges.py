"""`huleedu judges invite` and `huleedu judges links` against the real CJ service
(`python -m cj_assessment_service` on a free port): judges are invited to a live batch, their
links verify, a second invitation exits 1 with one error line, and the service's log holds no
link token, even of a refused link."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from typer.testing import CliRunner, Result

from cj_assessment_service.adapters.postgres import PostgresUnitOfWork
from cj_assessment_service.domain.judge_links import verify_judge_link
from cj_assessment_service.testing.human_judges import JUDGE_LINK_SECRET
from cj_assessment_service.testing.process import process_env
from cj_assessment_service.testing.requests import batch_record, unique_prefix
from common_core.testing.service_process import running_service
from huleedu_cli.app import app

pytestmark = pytest.mark.integration


async def _live_batch(database_url: str) -> uuid.UUID:
    engine = create_async_engine(database_url)
    try:
        async with async_sessionmaker(engine)() as session:
            uow = PostgresUnitOfWork(session)
            batch = batch_record()
            await uow.batches.add(batch)
            await uow.commit()
        return batch.id
    finally:
        await engine.dispose()


async def _cli(args: list[str]) -> Result:
    """The CLI in a thread (it runs its own event loop)."""
    runner = CliRunner()
    return await asyncio.to_thread(lambda: runner.invoke(app, args))


async def test_invite_then_list_links(
    database_url: str, kafka_bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = process_env(
        database_url, kafka_bootstrap_servers, unique_prefix(), JUDGE_LINK_SECRET=JUDGE_LINK_SECRET
    )
    logs = tmp_path_factory.mktemp("cj-judges")
    async with running_service("cj_assessment_service", env=env, log_dir=logs) as service:
        batch_id = str(await _live_batch(database_url))
        invite = [
            "judges", "invite", batch_id, "--judge", "t1=Ms Lind", "--judge", "t2=Mr Berg",
            "--share", "0.1", "--deadline", "+30m", "--cj-url", service.url,
        ]  # fmt: skip
        first = await _cli(invite)
        again = await _cli(invite)
        listed = await _cli(["judges", "links", batch_id, "--json", "--cj-url", service.url])
        document = json.loads(listed.stdout)
        token = document["judges"][0]["link"].rsplit("/judge/", 1)[1]
        async with httpx.AsyncClient(base_url=service.url) as http:
            page = await http.get(f"/judge/{token}")
            refused = await http.get(f"/judge/{token[:-4]}AAAA")
        log = service.log_path.read_text(errors="replace")

    assert first.exit_code == 0, first.output
    assert "Ms Lind" in first.stdout
    assert "Mr Berg" in first.stdout
    assert again.exit_code == 1
    assert again.output.strip().splitlines() == [
        f"error: CJ service answered 409 for /api/v1/batches/{batch_id}/human-judging: "
        f"human_judging_exists: batch {batch_id} already has human judging"
    ]
    assert listed.exit_code == 0, listed.output
    assert [j["judge_id"] for j in document["judges"]] == ["t1", "t2"]
    claims = verify_judge_link(token, JUDGE_LINK_SECRET.encode(), datetime.now(UTC))
    assert (str(claims.batch_id), claims.judge_id) == (batch_id, "t1")
    assert page.status_code == 200
    assert "No comparisons have been given to you yet" in page.text
    assert refused.status_code == 403
    assert token[:16] not in log
