"""3,000 full-length essays (≈ 11 MB of JSON, ten times the broker's 1 MB message limit) through
the CLI and the real broker: the CLI uploads them to the CJ service and publishes the request by
reference; the CJ and LLM provider services run as processes, the offline heuristic judge
answers at once, and the completed event carries every essay ranked exactly once.

The budget is two comparisons per essay (a coverage wave and six adaptive waves), enough to
exercise planning, callbacks, refits and scoring at this size within a few minutes.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common_core.testing.service_process import ServiceProcess, running_service
from huleedu_cli.app import app
from tests.integration.long_essays import INSTRUCTIONS, long_essays

pytestmark = pytest.mark.integration

ESSAYS = 3000
WORDS = 600
BUDGET = 2 * ESSAYS


@dataclass(frozen=True)
class Stack:
    kafka: str
    topic_prefix: str
    cj: ServiceProcess


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    database_url: str,
    postgres_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The CJ and LLM provider services (heuristic judge) under a topic prefix of their own."""
    logs = tmp_path_factory.mktemp("large-batch-logs")
    prefix = f"big{uuid.uuid4().hex[:10]}"
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
        "LOG_LEVEL": "WARNING",
    }
    async with contextlib.AsyncExitStack() as services:
        cj = await services.enter_async_context(
            running_service("cj_assessment_service", env=env, log_dir=logs)
        )
        await services.enter_async_context(
            running_service(
                "llm_provider_service",
                # Its own database on the server: two services' Alembic histories cannot share one.
                env={**env, "DATABASE_URL": postgres_server_url, "SERVICE_DATABASE_NAME": prefix},
                log_dir=logs,
            )
        )
        yield Stack(kafka=kafka_bootstrap_servers, topic_prefix=prefix, cj=cj)


@pytest.fixture(scope="module")
def essay_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("large-batch-essays")
    for essay_id, text in long_essays(ESSAYS, WORDS).items():
        (folder / f"{essay_id}.txt").write_text(text, encoding="utf-8")
    return folder


def test_three_thousand_full_length_essays_are_all_ranked_once(
    stack: Stack, essay_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    result = CliRunner().invoke(
        app,
        [
            "cj", "submit", str(essay_folder),
            "--prompt", INSTRUCTIONS,
            "--provider", "heuristic",
            "--budget", str(BUDGET),
            "--kafka", stack.kafka,
            "--topic-prefix", stack.topic_prefix,
            "--cj-url", stack.cj.url,
            "--timeout", "600",
            "--out", str(out),
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output + stack.cj.log_tail()
    printed = " ".join(result.stdout.split())  # the console wraps long lines
    assert f"uploaded {ESSAYS} essays to the CJ service as essay set" in printed
    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["status"] == "COMPLETED_SUCCESSFULLY"
    rankings = document["rankings"]
    assert sorted(r["essay_id"] for r in rankings) == [f"essay-{i:05d}" for i in range(ESSAYS)]
    assert sorted(r["rank"] for r in rankings) == list(range(1, ESSAYS + 1))
    usage = document["system_metadata"]["resource_usage"]
    assert ESSAYS <= usage["completed_comparisons"] <= BUDGET
    assert all(r["comparisons"] >= 1 for r in rankings)
