"""The client's Kafka side on the real broker, with a stand-in CJ service answering requests."""

from __future__ import annotations

import asyncio
import csv
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common_core.events import EssayToProcess
from common_core.runtime.kafka_admin import ensure_topics
from common_core.topics import Topic, topic_name
from devstack import free_port
from huleedu_cli.app import app
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from huleedu_cli.errors import CJBatchFailedError
from huleedu_cli.tests.integration.fake_cj_service import answer_requests

pytestmark = pytest.mark.integration

CJ_TOPICS = (
    Topic.CJ_ASSESSMENT_REQUESTED,
    Topic.CJ_ASSESSMENT_COMPLETED,
    Topic.CJ_ASSESSMENT_FAILED,
)
ESSAYS = {"short": "Phones.", "long": "Phones distract pupils in class.", "mid": "Phones help."}


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fake_cj(kafka_bootstrap_servers: str, prefix: str) -> Iterator[None]:
    """The stand-in CJ service, in its own thread and event loop (the CLI runs asyncio.run)."""
    asyncio.run(ensure_topics(kafka_bootstrap_servers, [topic_name(t, prefix) for t in CJ_TOPICS]))
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(answer_requests(kafka_bootstrap_servers, prefix, stop.is_set)),
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


def unused_cj_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


class TestRunBatch:
    def test_completed_event_for_the_batch_is_returned(
        self, kafka_bootstrap_servers: str, prefix: str, fake_cj: None
    ) -> None:
        request = build_cj_request(
            [EssayToProcess(essay_id=k, text_content=v) for k, v in ESSAYS.items()],
            entity_ref=f"ref-{uuid.uuid4().hex[:8]}",
        )
        completed = asyncio.run(
            run_cj_batch(
                request,
                bootstrap_servers=kafka_bootstrap_servers,
                topic_prefix=prefix,
                cj_url=unused_cj_url(),
                timeout=60,
            )
        )
        assert completed.entity_ref == request.entity_ref
        assert [r.essay_id for r in completed.rankings] == ["long", "mid", "short"]

    def test_failed_event_for_the_batch_raises(
        self, kafka_bootstrap_servers: str, prefix: str, fake_cj: None
    ) -> None:
        request = build_cj_request(
            [EssayToProcess(essay_id="a", text_content="x")], entity_ref="fail-one"
        )
        with pytest.raises(CJBatchFailedError, match="fake CJ service refused the batch"):
            asyncio.run(
                run_cj_batch(
                    request,
                    bootstrap_servers=kafka_bootstrap_servers,
                    topic_prefix=prefix,
                    cj_url=unused_cj_url(),
                    timeout=60,
                )
            )


class TestCommandLine:
    def test_submit_prints_the_ranking_and_writes_csv_json_and_png(
        self, kafka_bootstrap_servers: str, prefix: str, fake_cj: None, tmp_path: Path
    ) -> None:
        essays = tmp_path / "essays"
        essays.mkdir()
        for essay_id, text in ESSAYS.items():
            (essays / f"{essay_id}.txt").write_text(text, encoding="utf-8")
        intended = tmp_path / "intended.csv"
        intended.write_text(
            "essay_id,intended_rank,intended_grade\nlong,1,A\nmid,2,C\nshort,3,F\n",
            encoding="utf-8",
        )
        out, chart = tmp_path / "out", tmp_path / "chart.png"

        result = CliRunner().invoke(
            app,
            [
                "cj", "submit", str(essays),
                "--prompt", "Should schools ban phones?",
                "--kafka", kafka_bootstrap_servers,
                "--topic-prefix", prefix,
                "--cj-url", unused_cj_url(),
                "--timeout", "60",
                "--out", str(out),
                "--chart", str(chart),
                "--intended-order", str(intended),
            ],
        )  # fmt: skip

        assert result.exit_code == 0, result.output
        assert "Spearman rho 1.000 over 3 essays" in result.stdout
        with (out / "ranking.csv").open(encoding="utf-8", newline="") as handle:
            assert [row["essay_id"] for row in csv.DictReader(handle)] == ["long", "mid", "short"]
        document = json.loads((out / "result.json").read_text(encoding="utf-8"))
        assert document["status"] == "COMPLETED_SUCCESSFULLY"
        assert document["intended_order_agreement"]["spearman_rho"] == pytest.approx(1.0)
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    def test_failed_batch_prints_the_error_detail_and_exits_1(
        self, kafka_bootstrap_servers: str, prefix: str, fake_cj: None, tmp_path: Path
    ) -> None:
        essays = tmp_path / "essays"
        essays.mkdir()
        (essays / "a.txt").write_text("An essay.", encoding="utf-8")

        result = CliRunner().invoke(
            app,
            [
                "cj", "submit", str(essays),
                "--entity-ref", "fail-batch",
                "--kafka", kafka_bootstrap_servers,
                "--topic-prefix", prefix,
                "--cj-url", unused_cj_url(),
                "--timeout", "60",
            ],
        )  # fmt: skip

        assert result.exit_code == 1
        assert "CJ batch fail-batch failed" in result.stderr
        assert "code=validation" in result.stderr
        assert "fake CJ service refused the batch" in result.stderr
