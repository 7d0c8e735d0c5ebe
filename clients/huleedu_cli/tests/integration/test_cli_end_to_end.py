"""The CLI against the real stack: the CJ and LLM provider services as `python -m` processes.

Six sample essays go in as a CJ request event; the completed event comes back and the CLI
prints the ranking and writes ranking.csv, result.json and the PNG chart.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common_core.testing.service_process import running_service
from huleedu_cli.app import app

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[4]
SAMPLES = REPO_ROOT / "samples"
SIX_ESSAYS = ("s07", "s11", "s22", "s10", "s08", "s06")  # intended grades A, B, C, D, E, F


@dataclass(frozen=True)
class Stack:
    """Where the running services are."""

    kafka: str
    topic_prefix: str
    cj_url: str


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str,
    database_url: str,
    postgres_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """The CJ and LLM provider services on free ports under a topic prefix of their own."""
    logs = tmp_path_factory.mktemp("service-logs")
    prefix = f"cli{uuid.uuid4().hex[:10]}"
    # Provider API keys are left out by the helper: the offline judge, always.
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
        # Its own database (huleedu_llm_provider on the server): one database per service.
        llm_env = {**env, "DATABASE_URL": postgres_server_url}
        await services.enter_async_context(
            running_service("llm_provider_service", env=llm_env, log_dir=logs)
        )
        yield Stack(kafka=kafka_bootstrap_servers, topic_prefix=prefix, cj_url=cj.url)


@pytest.fixture
def six_essays(tmp_path: Path) -> Path:
    folder = tmp_path / "essays"
    folder.mkdir()
    for essay_id in SIX_ESSAYS:
        shutil.copy(SAMPLES / "essays" / f"{essay_id}.txt", folder / f"{essay_id}.txt")
    return folder


def test_folder_of_essays_gives_a_completed_ranking_with_csv_json_and_png(
    stack: Stack, six_essays: Path, tmp_path: Path
) -> None:
    out, chart = tmp_path / "out", tmp_path / "out" / "scores.png"

    result = CliRunner().invoke(
        app,
        [
            "cj", "submit", str(six_essays),
            "--prompt-file", str(SAMPLES / "prompt.md"),
            "--rubric-file", str(SAMPLES / "rubric.md"),
            "--provider", "heuristic",
            "--kafka", stack.kafka,
            "--topic-prefix", stack.topic_prefix,
            "--cj-url", stack.cj_url,
            "--timeout", "120",
            "--out", str(out),
            "--chart", str(chart),
            "--intended-order", str(SAMPLES / "intended_order.csv"),
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "scale separation reliability" in result.stdout
    assert "agreement with the intended order: Spearman rho" in result.stdout

    with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["essay_id"] for row in rows) == sorted(SIX_ESSAYS)
    assert [int(row["rank"]) for row in rows] == list(range(1, 7))
    assert all(row["standard_error"] for row in rows)

    document = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert document["status"] == "COMPLETED_SUCCESSFULLY"
    assert document["completion_reason"] == "ALL_PAIRS_COMPARED"
    assert document["system_metadata"]["resource_usage"]["completed_comparisons"] == 15
    assert document["intended_order_agreement"]["essays_compared"] == 6

    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_status_command_reports_the_finished_batch(
    stack: Stack, six_essays: Path, tmp_path: Path
) -> None:
    entity_ref = f"cli-status-{uuid.uuid4().hex[:8]}"
    submitted = CliRunner().invoke(
        app,
        [
            "cj", "submit", str(six_essays),
            "--prompt", "Should schools ban mobile phones during the school day?",
            "--entity-ref", entity_ref,
            "--kafka", stack.kafka,
            "--topic-prefix", stack.topic_prefix,
            "--cj-url", stack.cj_url,
            "--timeout", "120",
        ],
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output

    status = CliRunner().invoke(
        app, ["cj", "status", entity_ref, "--cj-url", stack.cj_url, "--results"]
    )

    assert status.exit_code == 0, status.output
    assert f"{entity_ref}: batch" in status.stdout
    assert "COMPLETED" in status.stdout
    assert '"rankings"' in status.stdout
