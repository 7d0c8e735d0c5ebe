"""`python -m benchmarks.llm_provider`: throughput of the LLM provider service.

For in-flight limits 1, 16 and 64 the benchmark publishes a burst of comparison requests to the
real Kafka broker and times until every callback is on the callback topic. The reference is the
ideal rate, limit / latency: a perfectly concurrent worker whose own overheads cost nothing.

Two set-ups:
- `throughput`: the service's worker (the real consume loop, answerer, judge with rate limits,
  circuit breaker and retries, producer) with a fake provider adapter that answers each call after
  200 ms. This measures the service's own concurrency machinery.
- `throughput_openai_sdk`: the whole service as its own process (`python -m
  llm_provider_service`) calling a fake OpenAI HTTP server (its own process, 200 ms per answer)
  through the official `openai` SDK. This adds the SDK's and HTTP stack's per-call CPU cost, which
  on a small machine is what limits one process at high concurrency.

And `cost` (`benchmarks/llm_provider/cost.py`, also runnable alone as
`python -m benchmarks.llm_provider.cost`): the estimated cost of a 100-essay CJ batch per mode
(synchronous, synchronous with prompt caching, batch with caching) and model.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from benchmarks.llm_provider.cost import run_cost_benchmark
from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack
from common_core.events.llm import LLMProviderName
from common_core.runtime.kafka_admin import ensure_topics
from common_core.runtime.kafka_producer import KafkaEventProducer, envelope_message
from common_core.runtime.logging import configure_logging
from common_core.testing.service_process import start_service
from common_core.topics import Topic, topic_name
from devstack import free_port
from llm_provider_service.application.answering import RequestAnswerer
from llm_provider_service.application.panel import build_panel
from llm_provider_service.application.ports import ChatReply, ChatRequest
from llm_provider_service.config import Settings
from llm_provider_service.entrypoints.consumers import request_consumer
from llm_provider_service.testing.requests import comparison_envelope

REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_LATENCY_SECONDS = 0.2
LIMITS = (1, 16, 64)
TARGET_FRACTION_AT_64 = 0.8
_UNLIMITED = {"OPENAI_REQUESTS_PER_MINUTE": "10000000", "OPENAI_TOKENS_PER_MINUTE": "1000000000"}

# Runs one limit against a topic prefix: (kafka, prefix, limit) -> an async context of the worker.
WorkerRunner = Callable[[str, str, int], Awaitable[Callable[[], Awaitable[None]]]]


class SleepingChatModel:
    """A provider adapter that answers every call with a valid verdict after a fixed latency."""

    def __init__(self, latency: float) -> None:
        self._latency = latency

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Wait, then answer."""
        await asyncio.sleep(self._latency)
        text = '{"winner": "essay_a", "justification": "A is developed.", "confidence": 3}'
        return ChatReply(text, request.model, prompt_tokens=900, completion_tokens=25)


def _requests_for(limit: int) -> int:
    # About five seconds of work at the ideal rate, at least 25 requests.
    return max(25, int(limit / PROVIDER_LATENCY_SECONDS * 5))


def _wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


async def _count_callbacks(consumer: AIOKafkaConsumer, expected: int, timeout: float) -> float:
    """Consume until `expected` callbacks arrived; returns the monotonic time of the last one."""
    seen = 0
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while seen < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {expected} callbacks arrived")
        batch = await consumer.getmany(timeout_ms=100)
        got = sum(len(records) for records in batch.values())
        if got:
            seen += got
            last = time.monotonic()
    return last


async def _measure(kafka: str, limit: int, start_worker: WorkerRunner) -> dict[str, Any]:
    """Start a worker for a fresh prefix, warm it up, then time a burst of requests."""
    prefix = f"bench.llm{uuid.uuid4().hex[:8]}"
    requests_topic = topic_name(Topic.LLM_COMPARISON_REQUESTED, prefix)
    rubric_topic = topic_name(Topic.LLM_RUBRIC_REQUESTED, prefix)
    callbacks = f"{prefix}.callbacks"
    await ensure_topics(kafka, [requests_topic, rubric_topic, callbacks], partitions=3)
    stop_worker = await start_worker(kafka, prefix, limit)
    consumer = AIOKafkaConsumer(
        callbacks,
        bootstrap_servers=kafka,
        group_id=f"bench-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        async with KafkaEventProducer(kafka, client_id="bench-llm") as producer:
            # Warm-up: one request through, so the group has joined and connections are open.
            await producer.publish(
                requests_topic, comparison_envelope(requests_topic, callbacks), key="warm"
            )
            await _count_callbacks(consumer, 1, timeout=60)
            total = _requests_for(limit)
            messages = [
                envelope_message(
                    requests_topic,
                    comparison_envelope(requests_topic, callbacks, metadata={"n": i}),
                    f"batch-{i % 8}",
                )
                for i in range(total)
            ]
            load = os.getloadavg()[0]
            started = time.monotonic()
            await producer.send_many(messages)
            finished = await _count_callbacks(consumer, total, timeout=total * 0.5 + 60)
    finally:
        await consumer.stop()
        await stop_worker()
    elapsed = finished - started
    rate = total / elapsed
    ideal = limit / PROVIDER_LATENCY_SECONDS
    return {
        "in_flight_limit": limit,
        "requests": total,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(rate, 2),
        "ideal_requests_per_second": round(ideal, 2),
        "fraction_of_ideal": round(rate / ideal, 3),
        "load_average_1m": round(load, 2),
    }


async def _in_process_worker(kafka: str, prefix: str, limit: int) -> Callable[[], Awaitable[None]]:
    settings = Settings(
        kafka_bootstrap_servers=kafka,
        topic_prefix=prefix,
        llm_consumer_group=f"llm_provider_service.{prefix}",
        llm_max_in_flight=limit,
        llm_default_provider=LLMProviderName.OPENAI,
        openai_requests_per_minute=10_000_000,
        openai_tokens_per_minute=1_000_000_000,
    )
    panel = build_panel(settings, {LLMProviderName.OPENAI: SleepingChatModel(0.2)})
    producer = KafkaEventProducer(kafka, client_id="bench-llm-worker")
    await producer.start()
    worker = request_consumer(settings, RequestAnswerer(settings, panel.judges), producer)
    task = asyncio.create_task(worker.run())

    async def stop() -> None:
        worker.stop()
        await task
        await producer.stop()

    return stop


def _service_process_runner(fake_url: str, log_dir: Path, database_url: str) -> WorkerRunner:
    async def start(kafka: str, prefix: str, limit: int) -> Callable[[], Awaitable[None]]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "TOPIC_PREFIX": prefix,
            "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
            "LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": fake_url,
            "LLM_DEFAULT_PROVIDER": "openai",
            "LLM_MAX_IN_FLIGHT": str(limit),
            "LLM_REQUEST_TIMEOUT_SECONDS": "30",
            # The service's own database (huleedu_llm_provider on the server); the rate budgets
            # stay per process: the limits are lifted here, the worker's machinery is measured.
            "DATABASE_URL": database_url,
            "LLM_RATE_LIMIT_SCOPE": "local",
            **_UNLIMITED,
        }
        # Started (and awaited ready) before the burst is timed, as before.
        service = await start_service(
            "llm_provider_service",
            env=env,
            log_dir=log_dir,
            keep_provider_keys=True,  # the fake server's key
            unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
            ready_path="/healthz/ready",
        )

        async def stop() -> None:
            await asyncio.to_thread(service.stop, 30.0)

        return stop

    return start


async def _series(name: str, kafka: str, runner: WorkerRunner) -> list[dict[str, Any]]:
    runs = []
    for limit in LIMITS:
        result = await _measure(kafka, limit, runner)
        print(
            f"llm_provider {name}: in-flight {limit:>2}: "
            f"{result['requests_per_second']:7.2f} req/s "
            f"(ideal {result['ideal_requests_per_second']:.0f}, "
            f"{result['fraction_of_ideal']:.0%} of ideal, "
            f"{result['requests']} requests in {result['seconds']:.2f} s, "
            f"load {result['load_average_1m']:.2f})",
            flush=True,
        )
        runs.append(result)
    return runs


async def _main(stack: BenchStack, fake_url: str, log_dir: Path) -> dict[str, Any]:
    kafka = stack.kafka_bootstrap_servers
    database_url = stack.postgres_server_url
    worker_runs = await _series("throughput", kafka, _in_process_worker)
    sdk_runs = await _series(
        "throughput_openai_sdk", kafka, _service_process_runner(fake_url, log_dir, database_url)
    )
    cost = await run_cost_benchmark(stack, log_dir)
    at_64 = next(r for r in worker_runs if r["in_flight_limit"] == 64)["fraction_of_ideal"]
    return {
        "benchmark": "llm_provider",
        "measured_at": datetime.now(UTC).isoformat(),
        "provider_latency_seconds": PROVIDER_LATENCY_SECONDS,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "throughput": {
            "path": "Kafka request -> worker -> judge (limits, breaker, retries) -> fake provider "
            "adapter (200 ms) -> callback acknowledged by Kafka",
            "runs": worker_runs,
            "target": {
                "fraction_of_ideal_at_64": TARGET_FRACTION_AT_64,
                "met": at_64 >= TARGET_FRACTION_AT_64,
            },
        },
        "throughput_openai_sdk": {
            "path": "Kafka request -> python -m llm_provider_service -> openai SDK over HTTP -> "
            "fake OpenAI server process (200 ms) -> callback acknowledged by Kafka",
            "runs": sdk_runs,
        },
        "cost": cost,
    }


def _start_fake_provider(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llm_provider_service.testing.fake_llm_server",
            "--port",
            str(port),
            "--delay",
            str(PROVIDER_LATENCY_SECONDS),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    """Run the benchmark and write benchmarks/results/llm_provider.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    configure_logging("benchmarks.llm_provider", "WARNING")
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", tempfile.gettempdir()))
    fake_port = free_port()
    with bench_stack() as stack:
        fake = _start_fake_provider(fake_port)
        try:
            _wait_for_port(fake_port)
            fake_url = f"http://127.0.0.1:{fake_port}/v1"
            results = asyncio.run(_main(stack, fake_url, log_dir))
        finally:
            fake.terminate()
            fake.wait(timeout=10)
    out = RESULTS_DIR / "llm_provider.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"llm_provider: wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
