"""`latency`: wall time of one CJ batch through the real stack against realistic answer times.

The CJ service and the LLM provider service run as their own processes (`python -m ...`), the
provider with the `openai` provider (the official SDK) against a stand-in OpenAI server on
127.0.0.1 whose answers take a realistic time: lognormal with a median of 1.0 s, 2 % of calls take
8-15 s, 2 % are answered 429 with `Retry-After: 2`. Provider rate limits are lifted. One batch of
100 essays with a budget of 1,000 comparisons (and an unreachable reliability target, so the whole
budget is spent as in the reference measurement of issue 12: 232 s with waves).

Reference, measured in the same run: the ideal wall time, the sum of the stand-in's call
latencies divided by the provider's in-flight limit (a provider kept busy every second); and the
provider-quota bound (calls / requests per minute), which is 0 here because the limits are
lifted. `fraction_of_ideal` = ideal / wall time (target >= 0.8).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from sqlalchemy.engine import make_url

from benchmarks.stack import BenchStack
from cj_assessment_service.config import Settings as CJSettings
from common_core.events.cj import CJAssessmentCompletedV1, CJAssessmentRequestV1, EssayToProcess
from common_core.events.envelope import EventEnvelope, decode_event
from common_core.runtime.database import asyncpg_dsn
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.testing import read_topic
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import Topic, topic_name
from llm_provider_service.testing.fake_llm_server import FakeLLMServer, FakeReply, ReceivedRequest

ESSAYS = 100
BUDGET = 1000
IN_FLIGHT = 32
MEDIAN_SECONDS = 1.0
LOGNORMAL_SIGMA = 0.5
SLOW_SHARE, SLOW_SECONDS = 0.02, (8.0, 15.0)
RATE_LIMITED_SHARE, RETRY_AFTER_SECONDS = 0.02, 2
RATE_LIMITED_REPLY_SECONDS = 0.05
# Ability of essay k on the stand-in's scale (logits): 0.05 * k, a spread like a real class.
ABILITY_STEP = 0.05
REFERENCE_WAVES_SECONDS = 232.0
TARGET_FRACTION = 0.8
_LEVEL = re.compile(r"quality level (\d+)")
_UNLIMITED = {"OPENAI_REQUESTS_PER_MINUTE": "10000000", "OPENAI_TOKENS_PER_MINUTE": "1000000000"}
_PROVIDER_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LLM_")


@dataclass
class RealisticLatency:
    """The stand-in's script: how long each call takes (recorded) and a Bradley-Terry verdict
    between the quality levels written in the two essays."""

    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(12))
    latencies: list[float] = field(default_factory=list)
    rate_limited: int = 0

    def __call__(self, request: ReceivedRequest, _index: int) -> FakeReply:
        """One call's reply."""
        draw = float(self.rng.random())
        if draw < RATE_LIMITED_SHARE:
            self.rate_limited += 1
            self.latencies.append(RATE_LIMITED_REPLY_SECONDS)
            return FakeReply(
                status=429,
                delay=RATE_LIMITED_REPLY_SECONDS,
                headers={"retry-after": str(RETRY_AFTER_SECONDS)},
            )
        if draw < RATE_LIMITED_SHARE + SLOW_SHARE:
            delay = float(self.rng.uniform(*SLOW_SECONDS))
        else:
            delay = float(self.rng.lognormal(math.log(MEDIAN_SECONDS), LOGNORMAL_SIGMA))
        self.latencies.append(delay)
        levels = [int(v) for v in _LEVEL.findall(json.dumps(request.body.get("messages", [])))]
        a_wins = True
        if len(levels) >= 2:
            p = 1.0 / (1.0 + math.exp(-ABILITY_STEP * (levels[0] - levels[1])))
            a_wins = float(self.rng.random()) < p
        verdict = {
            "winner": "essay_a" if a_wins else "essay_b",
            "justification": "The better essay develops its argument further.",
            "confidence": 3,
        }
        return FakeReply(content=json.dumps(verdict), delay=delay)


def _essay(level: int) -> str:
    return (
        f"An essay of quality level {level:03d}. Summer is the season of long days, and this "
        "essay argues that holidays should be spent outdoors, with reasons and examples."
    )


async def _create_database(stack: BenchStack) -> str:
    name = f"bench_cj_latency_{uuid.uuid4().hex[:8]}"
    admin = make_url(stack.postgres_server_url).set(database="postgres")
    connection = await asyncpg.connect(asyncpg_dsn(admin.render_as_string(False)))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(stack.postgres_server_url).set(database=name).render_as_string(False)


async def _hedged_calls(database_url: str) -> int:
    """Stragglers the CJ service asked a second time (cj_batches.hedged; one batch here)."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return int(await connection.fetchval("SELECT coalesce(sum(hedged), 0) FROM cj_batches"))
    finally:
        await connection.close()


async def _start_services(
    stack: BenchStack, prefix: str, database_url: str, fake: FakeLLMServer, log_dir: Path
) -> list[ServiceProcess]:
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
        "TOPIC_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
    }
    llm = await start_service(
        "llm_provider_service",
        env={
            **common,
            # The provider keeps its batch-mode state in its own database on this server.
            "DATABASE_URL": stack.postgres_server_url,
            "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
            "LLM_MAX_IN_FLIGHT": str(IN_FLIGHT),
            "LLM_DEFAULT_PROVIDER": "openai",
            "LLM_REQUEST_TIMEOUT_SECONDS": "60",
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": fake.openai_base_url,
            **_UNLIMITED,
        },
        log_dir=log_dir,
        keep_provider_keys=True,
        unset_prefixes=_PROVIDER_PREFIXES,
        ready_path="/healthz/ready",
    )
    try:
        cj = await start_service(
            "cj_assessment_service",
            env={**common, "DATABASE_URL": database_url, "PARTIAL_SCORING_GRACE_SECONDS": "3600"},
            log_dir=log_dir,
            unset_prefixes=("LLM_",),
            ready_path="/healthz/ready",
        )
    except BaseException:
        llm.stop()
        raise
    return [llm, cj]


async def _run_batch(
    stack: BenchStack, prefix: str
) -> tuple[float, float, CJAssessmentCompletedV1]:
    request_topic = topic_name(Topic.CJ_ASSESSMENT_REQUESTED, prefix)
    request = EventEnvelope[CJAssessmentRequestV1](
        event_type=request_topic,
        source_service="bench",
        correlation_id=uuid.uuid4(),
        data=CJAssessmentRequestV1(
            entity_ref=f"bench-latency-{uuid.uuid4().hex[:8]}",
            essays_to_process=[
                EssayToProcess(essay_id=f"e{k:03d}", text_content=_essay(k)) for k in range(ESSAYS)
            ],
            essay_instructions="Write about your summer.",
            max_comparisons=BUDGET,
            target_reliability=0.999,
        ),
    )
    async with KafkaEventProducer(stack.kafka_bootstrap_servers, client_id="bench") as producer:
        started = time.monotonic()
        await producer.publish(request_topic, request, key=request.data.entity_ref)
    records = await read_topic(
        stack.kafka_bootstrap_servers,
        topic_name(Topic.CJ_ASSESSMENT_COMPLETED, prefix),
        expected=1,
        timeout=900.0,
    )
    elapsed = time.monotonic() - started
    if not records or records[0].value is None:
        raise RuntimeError("the batch did not complete within 900 s")
    return started, elapsed, decode_event(records[0].value, CJAssessmentCompletedV1).data


async def latency_benchmark(stack: BenchStack) -> dict[str, Any]:
    """One batch through the real stack; its wall time beside the ideal."""
    prefix = f"bench{uuid.uuid4().hex[:10]}"
    # The CJ service runs with its default hedging settings (README "Hedged requests").
    hedging = CJSettings()
    database_url = await _create_database(stack)
    model = RealisticLatency()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-cj-latency-"))
    async with FakeLLMServer(model) as fake:
        services = await _start_services(stack, prefix, database_url, fake, log_dir)
        try:
            started, wall, completed = await _run_batch(stack, prefix)
        finally:
            for service in reversed(services):
                await asyncio.to_thread(service.stop, 30.0)
    hedged = await _hedged_calls(database_url)
    calls = len(model.latencies)
    # When the stand-in saw its first call and sent its last answer, from the request's publish.
    first_call = min(r.at for r in fake.received) - started
    last_answer = max(r.at + d for r, d in zip(fake.received, model.latencies, strict=True))
    last_answer -= started
    ideal = sum(model.latencies) / IN_FLIGHT
    quota_bound = 0.0  # limits lifted: 10,000,000 requests per minute
    bound = max(ideal, quota_bound)
    fraction = bound / wall
    usage = completed.system_metadata.resource_usage
    print(
        f"latency ({ESSAYS} essays, budget {BUDGET}, provider in-flight {IN_FLIGHT}, answers "
        f"lognormal median {MEDIAN_SECONDS} s, {SLOW_SHARE:.0%} take 8-15 s, "
        f"{RATE_LIMITED_SHARE:.0%} answered 429): wall {wall:.1f} s; ideal {ideal:.1f} s "
        f"(sum of {calls} call latencies / {IN_FLIGHT}; quota bound {quota_bound:.0f} s, limits "
        f"lifted) -> fraction of ideal {fraction:.2f} (target >= {TARGET_FRACTION}); "
        f"{usage.completed_comparisons} comparisons, reason {completed.completion_reason.value}; "
        f"{hedged} stragglers hedged (asked twice; default HEDGE_MAX_SHARE "
        f"{hedging.hedge_max_share}); "
        f"with waves the same batch took {REFERENCE_WAVES_SECONDS:.0f} s (issue 12). Timeline: "
        f"first provider call at {first_call:.1f} s, last answer sent at {last_answer:.1f} s",
        flush=True,
    )
    return {
        "essays": ESSAYS,
        "budget": BUDGET,
        "provider_in_flight_limit": IN_FLIGHT,
        "latency_model": {
            "lognormal_median_seconds": MEDIAN_SECONDS,
            "lognormal_sigma": LOGNORMAL_SIGMA,
            "slow_share": SLOW_SHARE,
            "slow_seconds": list(SLOW_SECONDS),
            "rate_limited_share": RATE_LIMITED_SHARE,
            "retry_after_seconds": RETRY_AFTER_SECONDS,
        },
        "wall_seconds": round(wall, 2),
        "first_provider_call_seconds": round(first_call, 2),
        "last_provider_answer_seconds": round(last_answer, 2),
        "provider_calls": calls,
        "hedged_calls": hedged,
        "hedging": {
            "max_share": hedging.hedge_max_share,
            "latency_multiple": hedging.hedge_latency_multiple,
            "min_age_seconds": hedging.hedge_min_age_seconds,
            "check_interval_seconds": hedging.hedge_check_interval_seconds,
        },
        "rate_limited_calls": model.rate_limited,
        "sum_of_call_latencies_seconds": round(sum(model.latencies), 2),
        "ideal_seconds": round(ideal, 2),
        "quota_bound_seconds": quota_bound,
        "fraction_of_ideal": round(fraction, 3),
        "target_fraction_of_ideal": TARGET_FRACTION,
        "met": fraction >= TARGET_FRACTION,
        "completed_comparisons": usage.completed_comparisons,
        "completion_reason": completed.completion_reason.value,
        "reference_waves_wall_seconds": REFERENCE_WAVES_SECONDS,
    }
