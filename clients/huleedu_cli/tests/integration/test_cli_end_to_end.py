"""The CLI against the real stack: the CJ and LLM provider services as `python -m` processes.

Six sample essays go in as a CJ request event; the completed event comes back and the CLI
prints the ranking and writes ranking.csv, result.json and the PNG chart.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from common_core.testing import eventually
from devstack import free_port
from huleedu_cli.app import app

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[4]
SAMPLES = REPO_ROOT / "samples"
SIX_ESSAYS = ("s07", "s11", "s22", "s10", "s08", "s06")  # intended grades A, B, C, D, E, F
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Stack:
    """Where the running services are."""

    kafka: str
    topic_prefix: str
    cj_url: str


def _start(module: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def _exited(module: str, log_path: Path) -> AssertionError:
    return AssertionError(f"{module} exited early:\n{log_path.read_text(errors='replace')[-3000:]}")


def _health_probe(
    url: str, module: str, process: subprocess.Popen[bytes], log_path: Path
) -> Callable[[], Awaitable[bool]]:
    async def healthy() -> bool:
        if process.poll() is not None:
            raise _exited(module, log_path)
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(f"{url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    return healthy


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The CJ and LLM provider services on free ports under a topic prefix of their own."""
    logs = tmp_path_factory.mktemp("service-logs")
    prefix = f"cli{uuid.uuid4().hex[:10]}"
    base_env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}  # the offline judge, always
    }
    base_env |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
        "LOG_LEVEL": "WARNING",
    }
    ports = {"cj_assessment_service": free_port(), "llm_provider_service": free_port()}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for module, port in ports.items():
            processes[module] = _start(
                module, base_env | {"HTTP_PORT": str(port)}, logs / f"{module}.log"
            )
        for module, port in ports.items():
            url, log_path = f"http://127.0.0.1:{port}", logs / f"{module}.log"
            await eventually(
                _health_probe(url, module, processes[module], log_path),
                timeout=60.0,
                interval=0.3,
                what=f"{module} /healthz",
            )
        yield Stack(
            kafka=kafka_bootstrap_servers,
            topic_prefix=prefix,
            cj_url=f"http://127.0.0.1:{ports['cj_assessment_service']}",
        )
    finally:
        for process in processes.values():
            _stop(process)


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
