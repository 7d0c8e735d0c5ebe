"""`llm_scaleout`: CJ batch throughput with 1, 2 and 3 LLM provider instances at a latency-bound
load.

The provider is the fake OpenAI server (`FakeLLMServer`, in the benchmark process) answering
every call after `LATENCY_SECONDS`; each LLM provider instance takes at most `IN_FLIGHT`
requests at once (`LLM_MAX_IN_FLIGHT`), so one instance answers at most IN_FLIGHT / LATENCY
comparisons a second and the provider itself never limits. The quota is far above the load, so
it is not the limit either (the instances' `huleedu_llm_rate_limit_waits_total` stays 0), but
how the rate budget is kept might be: the deployment's default (`LLM_RATE_LIMIT_SCOPE=shared`)
grants every call in the database (one round trip of `grant_rate_budget`, which locks the
budget rows while it runs), so all instances take turns there. So there are two series, each
with its own 1-instance reference: budgets per instance (`local`: the instances share only the
broker; their scale-out), then the shared one.

The workload is the same for every instance count: one CJ instance, `BATCHES` batches of
`ESSAYS` essays spending `COMPARISONS_PER_BATCH` comparisons each (an unreachable reliability
target, so no batch stops early; hedging off, so no extra calls), one batch per partition of a
topic with `PARTITIONS` partitions (a multiple of 1, 2 and 3, so every instance count owns an
equal share). Each comparison request is keyed by its request id, so every instance answers a
share of every batch; the batches are still placed one per partition (`placement.py`) so the
workload is the one of earlier runs. A series runs on one set of topics
and databases; each case adds an instance to the running ones (fresh batches per case).
Throughput is comparisons per second from the batches' commit to the last completed event; the
1-instance figure, measured first in the same run, is the reference for the speed-ups.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.cj.service_batches import cpu_seconds
from benchmarks.fleet.fresh_case import FleetCase, fresh_case
from benchmarks.fleet.instances import ServiceInstances, metric_sum, wait_for_even_assignment
from benchmarks.fleet.placement import BatchOutcomes, cj_request, place_batches
from benchmarks.stack import BenchStack
from common_core.testing.service_process import ServiceProcess
from common_core.topics import Topic
from llm_provider_service.testing.fake_llm_server import FakeLLMServer

LATENCY_SECONDS = 0.5
IN_FLIGHT = 8
PARTITIONS = 6
BATCHES = PARTITIONS
ESSAYS = 40
COMPARISONS_PER_BATCH = 100
# Two series of 1, 2 and 3 instances, each with its own 1-instance reference: a rate budget per
# instance (`local`: the instances share nothing but the broker, so what is measured is their
# scale-out), then the deployment's default budget shared through the database (`shared`).
SCOPES = ("local", "shared")
INSTANCE_COUNTS = (1, 2, 3)
TARGET_SPEEDUP = {2: 1.8, 3: 2.5}
UNREACHABLE_RELIABILITY = 0.99999
_QUOTA = {"OPENAI_REQUESTS_PER_MINUTE": "10000000", "OPENAI_TOKENS_PER_MINUTE": "1000000000"}


def _llm_env(case: FleetCase, provider: FakeLLMServer, scope: str) -> dict[str, str]:
    return {
        **case.llm_env,
        "OPENAI_API_KEY": "bench-key",
        "OPENAI_BASE_URL": provider.openai_base_url,
        "LLM_DEFAULT_PROVIDER": "openai",
        "LLM_MAX_IN_FLIGHT": str(IN_FLIGHT),
        "LLM_REQUEST_TIMEOUT_SECONDS": "60",
        "LLM_CONSUMER_GROUP": f"llm_provider_service.{case.env['TOPIC_PREFIX']}",
        "LLM_RATE_LIMIT_SCOPE": scope,
        "LLM_EXPECTED_INSTANCES": str(max(INSTANCE_COUNTS)),
        **_QUOTA,
    }


_COUNTERS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("answered", "huleedu_llm_callbacks_published_total", {"kind": "comparison"}),
    ("limiter_waits", "huleedu_llm_rate_limit_waits_total", {}),
    ("answer_seconds", "huleedu_llm_request_duration_seconds_sum", {}),
    ("answers_timed", "huleedu_llm_request_duration_seconds_count", {}),
)


async def _counters(llm: ServiceProcess) -> dict[str, float]:
    return {name: await metric_sum(llm, metric, **labels) for name, metric, labels in _COUNTERS}


async def _measure(
    case: FleetCase,
    provider: FakeLLMServer,
    cj: ServiceProcess,
    llms: list[ServiceProcess],
    scope: str,
    comparisons: int,
) -> dict[str, Any]:
    """Wait for the LLM group to settle on the running instances, then time one workload."""
    owned = await wait_for_even_assignment(
        llms,
        group=_llm_env(case, provider, scope)["LLM_CONSUMER_GROUP"],
        topic=case.cj_settings.topic(Topic.LLM_COMPARISON_REQUESTED),
        partitions=PARTITIONS,
    )
    calls_before = len(provider.received)
    counters_before = [await _counters(llm) for llm in llms]
    processes = [cj, *llms]
    cpu_before = [cpu_seconds(p.process.pid) or 0.0 for p in processes]
    load_before = os.getloadavg()[0]
    async with BatchOutcomes(case.cj_settings) as outcomes:
        batches, started = await place_batches(
            case.cj_settings,
            PARTITIONS,
            lambda ref: cj_request(
                ref, ESSAYS, budget=comparisons, target_reliability=UNREACHABLE_RELIABILITY
            ),
        )
        completed, finished = await outcomes.completed([b.entity_ref for b in batches], 900)
    wall = finished - started
    cpu = [
        (cpu_seconds(p.process.pid) or 0.0) - b for p, b in zip(processes, cpu_before, strict=True)
    ]
    counted = [
        {name: after[name] - before[name] for name in after}
        for before, after in zip(
            counters_before, [await _counters(llm) for llm in llms], strict=True
        )
    ]
    done = sum(e.system_metadata.resource_usage.completed_comparisons for e in completed.values())
    timed = sum(c["answers_timed"] for c in counted)
    return {
        "llm_instances": len(llms),
        "rate_limit_scope": scope,
        "partitions_per_instance": owned,
        "batches": len(batches),
        "completed_comparisons": done,
        "provider_calls": len(provider.received) - calls_before,
        "wall_seconds": round(wall, 2),
        "comparisons_per_second": round(done / wall, 2),
        "ideal_comparisons_per_second": len(llms) * IN_FLIGHT / LATENCY_SECONDS,
        "answered_per_instance": [int(c["answered"]) for c in counted],
        "rate_limiter_waits": int(sum(c["limiter_waits"] for c in counted)),
        "mean_answer_seconds": round(sum(c["answer_seconds"] for c in counted) / timed, 3)
        if timed
        else None,
        "cpu_seconds": {"cj": round(cpu[0], 1), "llm_instances": [round(c, 1) for c in cpu[1:]]},
        "cpu_share_of_two_cores": round(sum(cpu) / (2 * wall), 3),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "completion_reasons": sorted({e.completion_reason.value for e in completed.values()}),
    }


async def _series(
    stack: BenchStack, provider: FakeLLMServer, scope: str, comparisons: int, log_dir: Path
) -> dict[str, dict[str, Any]]:
    """One CJ instance and 1, 2, then 3 LLM provider instances (each case adds one to the
    running ones), on one set of topics and databases."""
    cases: dict[str, dict[str, Any]] = {}
    async with (
        fresh_case(stack, f"fleetllm{scope}", partitions=PARTITIONS) as case,
        ServiceInstances(
            "cj_assessment_service", env=case.cj_env, log_dir=log_dir, ready_path="/healthz/ready"
        ) as cjs,
        ServiceInstances(
            "llm_provider_service",
            env=_llm_env(case, provider, scope),
            log_dir=log_dir,
            keep_provider_keys=True,  # the fake server's key
            unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
            ready_path="/healthz/ready",
        ) as llms,
    ):
        (cj,) = await cjs.grow_to(1)
        for instances in INSTANCE_COUNTS:
            started = time.monotonic()
            running = await llms.grow_to(instances)
            case_figures = await _measure(case, provider, cj, running, scope, comparisons)
            cases[str(instances)] = case_figures
            _print_case(case_figures, time.monotonic() - started)
    return cases


async def run(stack: BenchStack) -> dict[str, Any]:
    """Each series, 1 instance first (its reference); BENCH_FLEET_COMPARISONS sets the
    comparisons per batch (default 100)."""
    comparisons = int(os.environ.get("BENCH_FLEET_COMPARISONS", COMPARISONS_PER_BATCH))
    series: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-llm-") as logs:
        async with FakeLLMServer(delay=LATENCY_SECONDS) as provider:
            for scope in SCOPES:
                series[scope] = await _series(stack, provider, scope, comparisons, Path(logs))
                _add_speedups(scope, series[scope])
    return {
        "provider_latency_seconds": LATENCY_SECONDS,
        "llm_max_in_flight": IN_FLIGHT,
        "partitions": PARTITIONS,
        "essays_per_batch": ESSAYS,
        "comparisons_per_batch": comparisons,
        "reference": "1 LLM provider instance with the same rate budget scope, same run",
        "series": series,
    }


def _add_speedups(scope: str, cases: dict[str, dict[str, Any]]) -> None:
    reference = cases["1"]["comparisons_per_second"]
    for case in cases.values():
        instances = case["llm_instances"]
        case["speedup"] = round(case["comparisons_per_second"] / reference, 3)
        target = TARGET_SPEEDUP.get(instances)
        case["target_speedup"] = target
        case["target_met"] = None if target is None else case["speedup"] >= target
        if target is not None:
            print(
                f"fleet llm_scaleout: {scope} rate budgets, {instances} instances: "
                f"{case['speedup']:.2f}x the 1-instance figure of this run (target {target}x: "
                f"{'met' if case['target_met'] else 'NOT met'})",
                flush=True,
            )


def _print_case(case: dict[str, Any], seconds: float) -> None:
    print(
        f"fleet llm_scaleout: {case['llm_instances']} LLM instance(s) "
        f"({case['rate_limit_scope']} rate budget), 1 CJ: "
        f"{case['completed_comparisons']} comparisons of {case['batches']} batches in "
        f"{case['wall_seconds']} s = {case['comparisons_per_second']:.1f}/s (ideal "
        f"{case['ideal_comparisons_per_second']:.0f}/s); answered per instance "
        f"{case['answered_per_instance']} (partitions {case['partitions_per_instance']}); "
        f"provider calls {case['provider_calls']}; rate-limiter waits "
        f"{case['rate_limiter_waits']}, mean answer {case['mean_answer_seconds']} s (provider "
        f"{LATENCY_SECONDS} s); CPU s CJ {case['cpu_seconds']['cj']} / LLM "
        f"{case['cpu_seconds']['llm_instances']} = {100 * case['cpu_share_of_two_cores']:.0f} % "
        f"of 2 cores; case took {seconds:.0f} s",
        flush=True,
    )
