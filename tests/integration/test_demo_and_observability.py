"""The demo's steps on the real stack, and a real Prometheus scraping all three services
and evaluating the stack's alerting rules (infra/prometheus/alerts.yml).

The three services run as `python -m <service>` processes on the test broker and PostgreSQL
(each with its own database and a topic prefix of its own), with the heuristic judge.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from common_core.events import CJAssessmentCompletedV1
from common_core.runtime.database import asyncpg_dsn
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess, free_tcp_port, start_service
from devstack.postgres import with_database
from devstack.processes import RunningProcess
from devstack.prometheus import ALERT_RULES, start_prometheus
from huleedu_cli.cj_batch import build_cj_request, run_cj_batch
from huleedu_cli.demo import SAMPLES, score_an_assessment, score_one_answer
from huleedu_cli.demo import run_cj_batch as demo_cj_step
from huleedu_cli.inputs import load_essays

pytestmark = pytest.mark.integration

SERVICES = ("submission_service", "llm_provider_service", "cj_assessment_service")
SHORT_BATCH = ("s07", "s11", "s22", "s10", "s08", "s06")  # intended grades A..F

KEY_METRICS = {
    "submission_service": [
        "huleedu_http_requests_total",
        "huleedu_http_request_duration_seconds_bucket",
        "huleedu_submission_completions_triggered_total",
        "huleedu_outbox_published_total",
        "huleedu_db_pool_connections_capacity",
    ],
    "llm_provider_service": [
        "huleedu_llm_requests_total",
        "huleedu_llm_request_duration_seconds_bucket",
        "huleedu_llm_in_flight_requests",
        "huleedu_db_pool_connections_checked_out",
    ],
    "cj_assessment_service": [
        "huleedu_cj_callbacks_processed_total",
        "huleedu_cj_batches_finished_total",
        "huleedu_outbox_published_total",
        "huleedu_db_pool_connections_capacity",
    ],
}


@dataclass(frozen=True)
class Stack:
    kafka: str
    topic_prefix: str
    services: dict[str, ServiceProcess]

    def url(self, name: str) -> str:
        return self.services[name].url


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-stack")


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, postgres_server_url: str, work_dir: Path
) -> AsyncIterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    databases = {
        "submission_service": f"{prefix}_submission",
        "cj_assessment_service": f"{prefix}_cj",
        "llm_provider_service": f"{prefix}_llm",
    }
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            env = {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
                "DATABASE_URL": with_database(postgres_server_url, databases[name]),
                "TOPIC_PREFIX": prefix,
                "LLM_DEFAULT_PROVIDER": "heuristic",
                # The CJ step's simulated teacher judges through a signed link.
                "JUDGE_LINK_SECRET": f"demo-judge-links-{uuid.uuid4().hex}",
            }
            started[name] = await start_service(name, env=env, log_dir=work_dir / "logs")
        yield Stack(kafka_bootstrap_servers, prefix, started)
    finally:
        for service in started.values():
            service.stop()
        admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
        try:
            for name in SERVICES:
                await admin.execute(f'DROP DATABASE IF EXISTS "{databases[name]}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="module")
def prometheus(stack: Stack, work_dir: Path) -> Iterator[str]:
    targets = {name: f"127.0.0.1:{service.port}" for name, service in stack.services.items()}
    process: RunningProcess = start_prometheus(work_dir, free_tcp_port(), targets)
    try:
        yield f"http://{process.address}"
    finally:
        process.stop(timeout=10.0)


class TestDemoSteps:
    async def test_cj_step_ranks_a_short_sample_batch_through_the_cli(
        self, stack: Stack, work_dir: Path
    ) -> None:
        essays = work_dir / "essays"
        essays.mkdir()
        for essay_id in SHORT_BATCH:
            shutil.copy(SAMPLES / "essays" / f"{essay_id}.txt", essays / f"{essay_id}.txt")
        output = work_dir / "out"

        await asyncio.to_thread(
            demo_cj_step,
            kafka_bootstrap_servers=stack.kafka,
            cj_url=stack.url("cj_assessment_service"),
            essays=essays,
            anchors=None,
            output=output,
            topic_prefix=stack.topic_prefix,
        )

        result = json.loads((output / "result.json").read_text())
        completed = CJAssessmentCompletedV1.model_validate(
            {k: v for k, v in result.items() if k != "intended_order_agreement"}
        )
        assert sorted(r.rank for r in completed.rankings) == list(range(1, 7))
        assert {r.essay_id for r in completed.rankings} == set(SHORT_BATCH)
        # The AI answers all 15 pairs; the simulated teacher judges its 10 % on top (2 of 17).
        people = completed.statistics.human_judging
        assert people is not None
        assert (people.judges_invited, people.assigned, people.judged) == (1, 2, 2)
        assert people.agreement is not None
        assert {j.kind for j in people.judges} == {"human", "llm"}
        assert completed.system_metadata.resource_usage.completed_comparisons == 15 + 2
        with (output / "ranking.csv").open() as handle:
            assert len(list(csv.DictReader(handle))) == 6
        assert (output / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    async def test_rubric_step_scores_an_answer_through_the_submission_api(
        self, stack: Stack
    ) -> None:
        score = await asyncio.to_thread(score_one_answer, stack.url("submission_service"))

        data = score["score_data"]
        assert set(data["scores"]) == {"relevance", "depth", "clarity", "technical"}
        assert all(1 <= value <= 5 for value in data["scores"].values())
        assert 1 <= data["overall"] <= 5
        assert "heuristic" in data["feedback"].lower()
        assert score["prompt_version"]

    async def test_assessment_step_follows_the_essay_through_its_four_stages(
        self, stack: Stack
    ) -> None:
        status = await asyncio.to_thread(score_an_assessment, stack.url("submission_service"))

        assert status["status"] == "completed"
        assert [(s["name"], s["weight"], s["status"]) for s in status["stages"]] == [
            ("rule_score", 0.2, "completed"),
            ("gpt", 0.3, "completed"),
            ("rag", 0.3, "completed"),
            ("fusion", 0.2, "completed"),
        ]
        [essay] = status["result"]["essays"]
        assert {p["stage"] for p in essay["fusion"]["parts"]} == {"rule_score", "gpt", "rag"}
        assert essay["fusion"]["citations"]


async def _targets(prometheus: str) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = (await client.get(f"{prometheus}/api/v1/targets")).json()
    return {t["labels"]["job"]: t["health"] for t in reply["data"]["activeTargets"]}


async def _rule_groups(prometheus: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = (await client.get(f"{prometheus}/api/v1/rules")).json()
    groups: list[dict[str, Any]] = reply["data"]["groups"]
    return groups


def _evaluated_with_services_up(groups: list[dict[str, Any]]) -> bool:
    """Every rule evaluated at least once, and ServiceDown neither pending nor firing."""
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    evaluated = bool(rules) and all(rule["health"] != "unknown" for rule in rules.values())
    return evaluated and rules.get("ServiceDown", {}).get("state") == "inactive"


async def _series(prometheus: str, metric: str, job: str) -> list[Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = await client.get(
            f"{prometheus}/api/v1/query", params={"query": f'{metric}{{job="{job}"}}'}
        )
    result: list[Any] = reply.json()["data"]["result"]
    return result


class TestPrometheusScrape:
    async def test_every_service_is_up_and_exposes_its_key_metrics(
        self, stack: Stack, prometheus: str
    ) -> None:
        # Some activity in every service, so labelled series exist.
        await asyncio.to_thread(score_one_answer, stack.url("submission_service"))
        essays = load_essays(SAMPLES / "essays")[:3]
        request = build_cj_request(essays, entity_ref=f"scrape-{uuid.uuid4().hex[:8]}")
        await run_cj_batch(
            request,
            bootstrap_servers=stack.kafka,
            topic_prefix=stack.topic_prefix,
            cj_url=stack.url("cj_assessment_service"),
            timeout=120,
        )

        targets = await eventually(
            lambda: _targets(prometheus),
            until=lambda t: len(t) == 3 and set(t.values()) == {"up"},
            timeout=30,
            what="all three targets up",
        )
        assert set(targets) == set(SERVICES)
        for job, metrics in KEY_METRICS.items():
            for metric in metrics:
                series = await eventually(
                    functools.partial(_series, prometheus, metric, job),
                    timeout=20,
                    what=f"{metric} scraped from {job}",
                )
                assert series, f"{metric} missing for {job}"

    async def test_the_stack_alerting_rules_are_loaded_and_evaluate_cleanly(
        self, prometheus: str
    ) -> None:
        await eventually(
            lambda: _targets(prometheus),
            until=lambda t: len(t) == 3 and set(t.values()) == {"up"},
            timeout=30,
            what="all three targets up",
        )
        groups = await eventually(
            lambda: _rule_groups(prometheus),
            until=_evaluated_with_services_up,
            timeout=30,
            what="every alerting rule evaluated, ServiceDown inactive",
        )

        rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
        assert {group["file"] for group in groups} == {str(ALERT_RULES)}
        assert set(rules) == set(re.findall(r"- alert: (\w+)", ALERT_RULES.read_text()))
        for name, rule in rules.items():
            assert (rule["type"], rule["health"], rule.get("lastError", "")) == (
                "alerting",
                "ok",
                "",
            ), name
            assert rule["labels"]["severity"] in {"critical", "warning"}, name
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name
        assert rules["ServiceDown"]["alerts"] == []
