"""One CJ batch through the real services, as an upstream sends it, with what it cost the CJ
process: the shared part of the `large_batch` and `throughput` benchmarks.

Fresh CJ and LLM provider processes and databases per batch (the offline heuristic judge
answers at once), the CLI's `run_cj_batch` publishing the request and waiting for the completed
event. Afterwards the CJ process's own metrics are read: its peak RSS (VmHWM), the largest
event-loop lag, consumer-group rebalances, and the time its compute pool spent on each kind of
computation; and its log is searched for the broker's heartbeat and session complaints.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from benchmarks.stack import BenchStack, drop_database
from common_core.events import EssayToProcess, EventEnvelope, LLMProviderName
from common_core.events.cj import CJAssessmentCompletedV1
from common_core.events.envelope import encode_envelope
from common_core.runtime.database import asyncpg_dsn
from common_core.testing.service_process import running_service
from huleedu_cli.cj_batch import build_cj_request, request_envelope, run_cj_batch
from tests.integration.long_essays import INSTRUCTIONS, long_essay

# What a CJ log line says when its event loop was blocked past the Kafka session.
GROUP_TROUBLE = ("Heartbeat session expired", "UnknownMemberId", "marking coordinator dead")


@dataclass(frozen=True)
class BatchShape:
    """What is sent: essays of about `words` words, a budget, a reliability target."""

    essays: int
    words: int
    budget: int
    target_reliability: float | None = None


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM) in MB, where /proc has it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used so far, where /proc has it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    return None


async def _batch_record(
    server_url: str, database: str, entity_ref: str
) -> tuple[int | None, float | None]:
    """The batch's waves and the seconds from its creation to its end, as CJ recorded them."""
    url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        row = await connection.fetchrow(
            "SELECT waves, EXTRACT(EPOCH FROM finished_at - created_at) AS seconds "
            "FROM cj_batches WHERE entity_ref = $1",
            entity_ref,
        )
    finally:
        await connection.close()
    if row is None:
        return None, None
    seconds = row["seconds"]
    return row["waves"], round(float(seconds), 2) if seconds is not None else None


async def _process_metrics(url: str) -> dict[str, Any]:
    """The CJ process's loop lag, rebalances and compute time, from its /metrics."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        body = (await client.get(f"{url}/metrics")).text
    figures: dict[str, Any] = {"max_event_loop_lag_seconds": None, "consumer_rebalances": 0}
    compute: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name.endswith(("_sum", "_count")) and not sample.labels.get("kind"):
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
            if sample.name == "huleedu_event_loop_lag_max_seconds":
                figures["max_event_loop_lag_seconds"] = round(sample.value, 3)
            elif sample.name == "huleedu_consumer_rebalances_total":
                figures["consumer_rebalances"] += int(sample.value)
            elif sample.name == "huleedu_compute_seconds_sum":
                compute[sample.labels["kind"]] = round(sample.value, 2)
    figures["compute_seconds"] = compute
    # Where an answer's time goes: staged -> published (the outbox relay), and staged ->
    # recorded (the whole round trip through the LLM provider and back).
    for name, metric in (
        ("mean_outbox_delay_seconds", "huleedu_outbox_publish_delay_seconds"),
        ("mean_round_trip_seconds", "huleedu_cj_callback_latency_seconds"),
    ):
        count = sums.get(f"{metric}_count", 0.0)
        figures[name] = round(sums.get(f"{metric}_sum", 0.0) / count, 3) if count else None
    return figures


ServicesEnv = Callable[[str, str], Awaitable[tuple[dict[str, str], dict[str, str]]]]
"""Given the CJ and LLM provider database names, prepares them (migrations, roles) and returns
each service's extra environment (database and Kafka settings), over the default one."""


async def run_service_batch(
    stack: BenchStack,
    shape: BatchShape,
    *,
    label: str,
    cj_env: Mapping[str, str] | None = None,
    services_env: ServicesEnv | None = None,
) -> dict[str, Any]:
    """Run one batch of `shape` through fresh services; its figures. `services_env` replaces
    the default (the stack's superuser, migrations at start) with the caller's settings."""
    essays = [
        EssayToProcess(essay_id=f"essay-{i:05d}", text_content=long_essay(i, shape.words))
        for i in range(shape.essays)
    ]
    request = build_cj_request(
        essays,
        entity_ref=f"bench-{label}-{uuid.uuid4().hex[:8]}",
        essay_instructions=INSTRUCTIONS,
        provider=LLMProviderName.HEURISTIC,
        max_comparisons=shape.budget,
    )
    if shape.target_reliability is not None:
        request = request.model_copy(update={"target_reliability": shape.target_reliability})
    database = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{label}{uuid.uuid4().hex[:8]}"
    server = make_url(stack.postgres_server_url).set(database="postgres")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
        "DATABASE_URL": server.render_as_string(hide_password=False),
        "SERVICE_DATABASE_NAME": database,
        "TOPIC_PREFIX": prefix,
        "LLM_DEFAULT_PROVIDER": "heuristic",
        "LOG_LEVEL": "WARNING",
    }
    uploaded_after: list[float] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as logs:
        try:
            cj_extra, llm_extra = (
                await services_env(database, f"{database}_llm") if services_env else ({}, {})
            )
            async with (
                running_service(
                    "cj_assessment_service",
                    env={**env, **cj_extra, **(cj_env or {})},
                    log_dir=Path(logs),
                ) as cj,
                running_service(
                    "llm_provider_service",
                    env={**env, "SERVICE_DATABASE_NAME": f"{database}_llm", **llm_extra},
                    log_dir=Path(logs),
                ) as llm,
            ):
                cpu_before = (
                    cpu_seconds(cj.process.pid) or 0.0,
                    cpu_seconds(llm.process.pid) or 0.0,
                )
                start = time.perf_counter()
                completed = await run_cj_batch(
                    request,
                    bootstrap_servers=stack.kafka_bootstrap_servers,
                    security=stack.kafka_security,
                    topic_prefix=prefix,
                    cj_url=cj.url,
                    timeout=3600,
                    on_upload=lambda _n, _ref: uploaded_after.append(time.perf_counter() - start),
                )
                wall = time.perf_counter() - start
                peak_rss = peak_rss_mb(cj.process.pid)
                cpu = (
                    (cpu_seconds(cj.process.pid) or 0.0) - cpu_before[0],
                    (cpu_seconds(llm.process.pid) or 0.0) - cpu_before[1],
                )
                process = await _process_metrics(cj.url)
                provider = await _process_metrics(llm.url)
                log_text = cj.log_path.read_text(errors="replace")
            waves, in_service = await _batch_record(
                stack.postgres_server_url, database, request.entity_ref
            )
        finally:
            await drop_database(stack.postgres_server_url, database)
            await drop_database(stack.postgres_server_url, f"{database}_llm")
    completed_bytes = encode_envelope(
        EventEnvelope[CJAssessmentCompletedV1](
            event_type=f"{prefix}.cj_assessment.completed.v1",
            source_service="cj_assessment_service",
            correlation_id=uuid.uuid4(),
            data=completed,
        )
    )
    usage = completed.system_metadata.resource_usage
    ranked = sorted(r.essay_id for r in completed.rankings)
    compute = process.pop("compute_seconds")
    return {
        "essays": shape.essays,
        "words_per_essay": round(sum(len(e.text_content.split()) for e in essays) / shape.essays),
        "budget": shape.budget,
        "target_reliability": shape.target_reliability,
        "inline_request_bytes": len(encode_envelope(request_envelope(request))),
        "sent_by_reference": bool(uploaded_after),
        "upload_seconds": round(uploaded_after[0], 2) if uploaded_after else None,
        "wall_seconds": round(wall, 1),
        # From the request's batch row being created to the batch's end, inside CJ: the wall
        # time less the CLI's connections, the request's way in and the completed event's out.
        "in_service_seconds": in_service,
        "completed_comparisons": usage.completed_comparisons,
        "comparisons_per_second": round(usage.completed_comparisons / wall, 1),
        "cj_peak_rss_mb": peak_rss,
        "cj_cpu_seconds": round(cpu[0], 1),
        "llm_provider_cpu_seconds": round(cpu[1], 1),
        **process,
        "compute_seconds": compute,
        "llm_provider_max_event_loop_lag_seconds": provider["max_event_loop_lag_seconds"],
        "llm_provider_consumer_rebalances": provider["consumer_rebalances"],
        "reliability_check_share_of_wall": round(compute.get("reliability_check", 0.0) / wall, 4),
        "group_trouble_log_lines": sum(log_text.count(phrase) for phrase in GROUP_TROUBLE),
        "waves": waves,
        "completion_reason": completed.completion_reason.value,
        "posterior_reliability": completed.statistics.posterior_reliability,
        "every_essay_ranked_once": ranked == sorted(e.essay_id for e in essays),
        "completed_event_bytes": len(completed_bytes),
        "completed_event_gzip_bytes": len(gzip.compress(completed_bytes)),
    }
