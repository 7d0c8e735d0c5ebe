"""The chaos and fleet tests' harness: CJ batches run through real CJ and LLM provider
processes (one of each, or several: a `ServiceFleet`) against a fake OpenAI server, and the
evidence read back (events, rows, callbacks, dead letters, logs, each process's metrics).

The session-wide broker and database of the root conftest.py serve every other test (and the
fleet tests, which kill only service processes: `SharedStack`), so the chaos tests, which kill
the broker and PostgreSQL, start their own (`crashable_stack`, on free ports, in a temporary
state dir) and kill only those.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from cj_assessment_service.adapters.tables import cj_batches, cj_pairs, cj_scores
from cj_assessment_service.domain.batch import PairStatus
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    EssayToProcess,
)
from common_core.events.envelope import EventEnvelope, decode_event
from common_core.events.llm import ComparisonWinner, LLMComparisonResultV1, LLMConfig
from common_core.runtime.database import create_engine
from common_core.runtime.kafka_producer import KafkaEventProducer
from common_core.runtime.outbox import event_outbox
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess, start_service
from common_core.topics import DLQ_SUFFIX, Topic, topic_name
from devstack import free_port, restart_kafka, start_kafka, start_postgres
from devstack.postgres import RunningPostgres, libpq_url, with_database
from devstack.processes import RunningProcess
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from llm_provider_service.testing.fake_llm_server import (
    FakeLLMServer,
    FakeReply,
    ReceivedRequest,
)

T = TypeVar("T")

FAKE_API_KEY = "sk-chaos-never-logged-0123456789"
# Every essay text carries this marker: it must never reach a log line.
ESSAY_MARKER = "chaos-essay-body"
TERMINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED")
READY_PATH = "/healthz/ready"
# Inherited settings the service processes must not see; the harness sets its own.
_PROVIDER_PREFIXES = ("OPENAI_", "ANTHROPIC_", "LLM_")
# A process start takes a few seconds, but minutes on the shared 2-core machine while other
# suites run: every Python process imports numpy, SQLAlchemy and the Kafka client.
START_TIMEOUT = 300.0
_QUALITY = re.compile(r"quality level (\d+)")
ESSAY_A, ESSAY_B = ComparisonWinner.ESSAY_A.value, ComparisonWinner.ESSAY_B.value


# --- A broker and a database that may be killed ---------------------------------------------


@dataclass
class CrashableStack:
    """A Kafka broker and a PostgreSQL of the chaos tests' own, killed and restarted on their
    data dirs. Blocking devstack calls run on one long-lived thread: the broker is spawned with
    a parent-death signal, which Linux ties to the spawning thread."""

    state_dir: Path
    broker: RunningProcess
    postgres: RunningPostgres
    thread: ThreadPoolExecutor

    @property
    def bootstrap_servers(self) -> str:
        """The broker's bootstrap address (the same across restarts)."""
        return self.broker.address

    async def _on_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.thread, call)

    async def kill_broker(self) -> None:
        """SIGKILL the broker (no controlled shutdown, nothing flushed)."""
        await self._on_thread(self.broker.kill)

    async def restart_broker(self) -> None:
        """Start the broker again on its data dir and port; wait until it serves metadata."""
        self.broker = await self._on_thread(
            functools.partial(restart_kafka, self.state_dir, die_with_parent=True)
        )

    async def kill_postgres(self) -> None:
        """SIGKILL the postmaster and its backends (no checkpoint)."""
        await self._on_thread(self.postgres.kill)

    async def restart_postgres(self) -> None:
        """Start PostgreSQL again on its data dir and port (it replays its WAL first)."""
        self.postgres = await self._on_thread(self.postgres.restart)

    async def new_database(self) -> str:
        """A fresh database on the stack's server; its postgresql+asyncpg URL."""
        return await create_database(self.postgres.url, "chaos")


async def create_database(server_url: str, prefix: str) -> str:
    """A fresh database (`<prefix>_<hex>`) on a PostgreSQL server; its postgresql+asyncpg URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(libpq_url(server_url))
    try:
        await connection.execute(f'create database "{name}"')
    finally:
        await connection.close()
    return with_database(server_url, name)


def _new_state_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="devstack-chaos-"))
    path.chmod(0o755)  # the postgres account must reach its data dir inside
    return path


@contextlib.asynccontextmanager
async def crashable_stack() -> AsyncIterator[CrashableStack]:
    """Start a private broker and PostgreSQL; stop both by PID and delete their data at the end.

    PostgreSQL runs with its durable settings: the test-only `fast` ones (synchronous_commit=off)
    may lose acknowledged commits in a crash, which no service could be asked to survive.
    """
    state_dir = _new_state_dir()
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-stack")
    loop = asyncio.get_running_loop()
    broker: RunningProcess | None = None
    postgres: RunningPostgres | None = None
    try:
        postgres = await loop.run_in_executor(
            thread, functools.partial(start_postgres, state_dir, free_port())
        )
        broker = await loop.run_in_executor(
            thread, functools.partial(start_kafka, state_dir, free_port(), die_with_parent=True)
        )
        stack = CrashableStack(state_dir, broker, postgres, thread)
        try:
            yield stack
        finally:
            broker, postgres = stack.broker, stack.postgres
    finally:
        try:
            if broker is not None:
                broker.stop(timeout=20.0)
        finally:
            if postgres is not None:
                postgres.stop(timeout=20.0)
            thread.shutdown(wait=True)
            shutil.rmtree(state_dir, ignore_errors=True)


# --- The judge behind the fake OpenAI-compatible server -------------------------------------


def essay_text(level: int) -> str:
    """An essay whose quality the fake judge reads back from its text."""
    return (
        f"{ESSAY_MARKER}: an essay of quality level {level:03d}. Summer is the season of long "
        "days, and this essay argues that holidays should be spent outdoors."
    )


def judge_by_quality(request: ReceivedRequest, _index: int) -> FakeReply:
    """Answer like a consistent model: the essay of the higher quality level wins."""
    if not request.is_comparison:
        return FakeReply()
    prompt = json.dumps(request.body.get("messages", []))
    levels = [int(level) for level in _QUALITY.findall(prompt)]
    a_wins = len(levels) >= 2 and levels[0] > levels[1]
    verdict = {
        "winner": ESSAY_A if a_wins else ESSAY_B,
        "justification": "The better essay develops its argument further.",
        "confidence": 4,
    }
    return FakeReply(content=json.dumps(verdict))


# --- Polling the CJ HTTP API throughout ------------------------------------------------------


@dataclass
class ApiPoller:
    """Polls HTTP paths of a service in a loop and keeps every answer (status or error)."""

    base_url: str
    paths: Sequence[str]
    interval: float = 0.25
    answers: list[tuple[str, int | str]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Poll until `stop()`."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as client:
            while not self._stopping.is_set():
                for path in self.paths:
                    try:
                        answer: int | str = (await client.get(path)).status_code
                    except httpx.HTTPError as exc:
                        answer = type(exc).__name__
                    self.answers.append((path, answer))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    def stop(self) -> None:
        """End the loop after the round in hand."""
        self._stopping.set()

    def counts(self) -> dict[tuple[str, int | str], int]:
        """How often each path gave each answer."""
        return dict(Counter(self.answers))


def unexpected_answers(
    counts: dict[tuple[str, int | str], int],
) -> dict[tuple[str, int | str], int]:
    """The answers that are neither 2xx nor 503 (errors without an answer included)."""
    return {
        (path, answer): count
        for (path, answer), count in counts.items()
        if not (isinstance(answer, int) and (200 <= answer < 300 or answer == 503))
    }


# --- Logs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogProblem:
    """A log line that breaks the rules: where it is, what is wrong, and its text."""

    path: Path
    line_number: int
    kind: str
    text: str

    @property
    def process(self) -> str:
        """The service the log belongs to (its file is `<module>-<port>.log`)."""
        return self.path.stem.rsplit("-", 1)[0]


FORBIDDEN_TEXT = "an essay text or the API key"
_VARYING = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+")


def log_problems(paths: Sequence[Path], forbidden: Sequence[str]) -> list[LogProblem]:
    """Lines that are not a JSON object, hold a traceback, or contain a forbidden text."""
    problems = []
    for path in paths:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                problems.append(LogProblem(path, number, "not a JSON object", line))
            if "Traceback" in line:
                problems.append(LogProblem(path, number, "traceback", line))
            if any(text in line for text in forbidden):
                problems.append(LogProblem(path, number, FORBIDDEN_TEXT, "(not shown)"))
    return problems


def summarize_log_problems(problems: Sequence[LogProblem], limit: int = 25) -> str:
    """Problems grouped by process, kind and text (ids and numbers masked), most frequent
    first, each with its first place."""
    groups: dict[tuple[str, str, str], list[LogProblem]] = {}
    for problem in problems:
        shape = _VARYING.sub("N", problem.text)[:160]
        groups.setdefault((problem.process, problem.kind, shape), []).append(problem)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    lines = [
        f"{len(found)}x {process}: {kind}: {shape}  (first: {found[0].path.name}:"
        f"{found[0].line_number})"
        for (process, kind, shape), found in ranked[:limit]
    ]
    if len(ranked) > limit:
        lines.append(f"... and {len(ranked) - limit} more kinds")
    return "\n".join(lines)


# --- Reading topics to their end ------------------------------------------------------------


async def partitions_by_topic(bootstrap_servers: str, prefix: str) -> dict[str, list[int]]:
    """The partitions of every topic under a prefix."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    return {
        str(t["topic"]): sorted(int(p["partition"]) for p in t["partitions"])
        for t in described
        if str(t["topic"]).startswith(f"{prefix}.")
    }


async def _read_to_end(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    records: list[ConsumerRecord[bytes, bytes]] = []
    async with asyncio.timeout(60):
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            fetched = await consumer.getmany(*tps, timeout_ms=500)
            for part in fetched.values():
                records.extend(part)
    return records


async def topic_contents(
    bootstrap_servers: str, partitions: dict[str, list[int]]
) -> dict[str, list[ConsumerRecord[bytes, bytes]]]:
    """Every message of each topic, read from the start to the end offsets of now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        return {
            topic: await _read_to_end(consumer, [TopicPartition(topic, p) for p in numbers])
            for topic, numbers in partitions.items()
            if numbers
        }
    finally:
        await consumer.stop()


# --- Reading a running process: its metrics and its consumer-group assignment ---------------


async def metric_total(process: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of a metric's samples on the process's `/metrics` that carry `labels` (a counter
    by its sample name, e.g. `huleedu_cj_requests_total`)."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        response = await client.get(f"{process.url}/metrics")
    response.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _log_records(process: ServiceProcess) -> list[dict[str, Any]]:
    records = []
    for line in process.log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def assigned_partitions(process: ServiceProcess, group: str, topic: str) -> set[int] | None:
    """The partitions of `topic` in the member's latest assignment in `group`, as its log says
    (`partitions_assigned`); None before its first."""
    latest: set[int] | None = None
    for record in _log_records(process):
        if record.get("event") == "partitions_assigned" and record.get("group") == group:
            named = (str(p).rsplit(":", 1) for p in record.get("partitions", []))
            latest = {int(number) for name, number in named if name == topic}
    return latest


async def settled_assignment(
    members: Sequence[ServiceProcess], group: str, topic: str, partitions: int
) -> list[set[int]]:
    """Each member's partitions of `topic` once the group has settled: every member owns some,
    none owns another's and together they own all."""

    async def current() -> list[set[int]]:
        for member in members:
            if member.process.poll() is not None:
                raise AssertionError(f"{member.module} exited:\n{member.log_tail()}")
        return [assigned_partitions(member, group, topic) or set() for member in members]

    def settled(owned: list[set[int]]) -> bool:
        union = set().union(*owned)
        return (
            all(owned)
            and sum(len(o) for o in owned) == len(union)
            and union == set(range(partitions))
        )

    return await eventually(
        current, until=settled, timeout=90, interval=0.25, what=f"{group} settled on {topic}"
    )


def partition_of(key: str, partitions: int) -> int:
    """The partition the producers' default partitioner picks for `key` (murmur2, as Java's)."""
    hashed: int = murmur2(key.encode("utf-8"))
    return (hashed & 0x7FFFFFFF) % partitions


def key_on(partitions: set[int], total: int, prefix: str) -> str:
    """A fresh key (`prefix-<hex>`) that lands on one of `partitions`."""
    while True:
        key = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if partition_of(key, total) in partitions:
            return key


async def batch_of_requests(cj_database_url: str) -> dict[str, str]:
    """The batch of every comparison request the CJ pairs name now (request id -> batch id; a
    pair asked again names its latest request only)."""
    engine = create_engine(cj_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(cj_pairs.c.request_id, cj_pairs.c.batch_id))
            return {str(request_id): str(batch_id) for request_id, batch_id in rows}
    finally:
        await engine.dispose()


def answered_request_ids(processes: Sequence[ServiceProcess]) -> Counter[str]:
    """How often the LLM provider processes answered each request id (`request_answered` in
    their logs: a provider call that finished, whatever its outcome)."""
    return Counter(
        str(record["request_id"])
        for process in processes
        for record in _log_records(process)
        if record.get("event") == "request_answered" and "request_id" in record
    )


# --- CJ and LLM provider processes on one broker and one database per service ---------------


class ServiceStack(Protocol):
    """The broker and the PostgreSQL server the service processes use."""

    @property
    def bootstrap_servers(self) -> str:
        """The broker's bootstrap address."""
        ...

    async def new_database(self) -> str:
        """A fresh database on the server; its postgresql+asyncpg URL."""
        ...


@dataclass
class SharedStack:
    """The session's broker and PostgreSQL server (never killed); `drop_databases` drops the
    databases made here."""

    bootstrap_servers: str
    server_url: str
    databases: list[str] = field(default_factory=list)

    async def new_database(self) -> str:
        """A fresh database on the server; its postgresql+asyncpg URL."""
        url = await create_database(self.server_url, "fleet")
        self.databases.append(url)
        return url

    async def drop_databases(self) -> None:
        """Drop every database made here (connections still open are ended)."""
        connection = await asyncpg.connect(libpq_url(self.server_url))
        try:
            for url in self.databases:
                name = make_url(url).database
                await connection.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await connection.close()


@dataclass
class ServiceFleet:
    """CJ and LLM provider processes calling a fake OpenAI server: every call takes the fake's
    delay and each LLM provider process runs at most `in_flight` calls at once.

    All CJ processes share one database, all LLM provider processes another. `cjs` and `llms`
    are the processes running; `processes` every one started (for the logs and the final stop).
    """

    stack: ServiceStack
    log_dir: Path
    fake_llm: FakeLLMServer
    cj_database_url: str
    llm_database_url: str
    in_flight: int
    llm_grace_seconds: float = 3.0
    env: dict[str, str] = field(default_factory=dict)
    cj_env: dict[str, str] = field(default_factory=dict)
    llm_env: dict[str, str] = field(default_factory=dict)
    prefix: str = field(default_factory=lambda: f"fleet{uuid.uuid4().hex[:10]}")
    cjs: list[ServiceProcess] = field(default_factory=list)
    llms: list[ServiceProcess] = field(default_factory=list)
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def llm_group(self) -> str:
        """The LLM provider processes' consumer group."""
        return f"llm_provider_service.{self.prefix}"

    def topic(self, topic: Topic) -> str:
        """A topic's full name under the fleet's prefix."""
        return topic_name(topic, self.prefix)

    def _common_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.stack.bootstrap_servers,
            "TOPIC_PREFIX": self.prefix,
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "true",
            **self.env,
        }

    async def start_llm_provider(self, instance_id: str | None = None) -> ServiceProcess:
        """Start an LLM provider process (calling the fake server), ready once it consumes."""
        env = {
            **self._common_env(),
            "DATABASE_URL": self.llm_database_url,
            "LLM_CONSUMER_GROUP": self.llm_group,
            "LLM_MAX_IN_FLIGHT": str(self.in_flight),
            "LLM_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "LLM_SHUTDOWN_GRACE_SECONDS": str(self.llm_grace_seconds),
            "OPENAI_API_KEY": FAKE_API_KEY,
            "OPENAI_BASE_URL": self.fake_llm.openai_base_url,
            **({"INSTANCE_ID": instance_id} if instance_id else {}),
            **self.llm_env,
        }
        process = await start_service(
            "llm_provider_service",
            env=env,
            log_dir=self.log_dir,
            keep_provider_keys=True,
            unset_prefixes=_PROVIDER_PREFIXES,
            ready_path=READY_PATH,
            ready_timeout=START_TIMEOUT,
        )
        self.llms.append(process)
        self.processes.append(process)
        return process

    async def start_cj(self, instance_id: str | None = None) -> ServiceProcess:
        """Start a CJ process; it waits for every answer of the whole budget (no early stop on
        a reliability target, no partial scoring however long an outage lasts)."""
        env = {
            **self._common_env(),
            "DATABASE_URL": self.cj_database_url,
            "MONITOR_INTERVAL_SECONDS": "0.5",
            "MIN_COMPARISONS_PER_ESSAY_BEFORE_STOP": "1000000",
            "PARTIAL_SCORING_GRACE_SECONDS": "3600",
            **({"INSTANCE_ID": instance_id} if instance_id else {}),
            **self.cj_env,
        }
        process = await start_service(
            "cj_assessment_service",
            env=env,
            log_dir=self.log_dir,
            unset_prefixes=("LLM_",),
            ready_timeout=START_TIMEOUT,
        )
        self.cjs.append(process)
        self.processes.append(process)
        return process

    def _forget(self, process: ServiceProcess) -> None:
        for running in (self.cjs, self.llms):
            if process in running:
                running.remove(process)

    async def kill(self, process: ServiceProcess) -> None:
        """SIGKILL a process (nothing in flight is answered or committed)."""
        self._forget(process)
        await asyncio.to_thread(process.kill)

    async def stop_gracefully(self, process: ServiceProcess) -> int | None:
        """SIGTERM a process and wait for it to drain and exit; its exit code. The wait runs on
        a thread: the fake server on this loop must go on answering the calls being drained."""
        self._forget(process)
        return await asyncio.to_thread(process.stop, 60.0)

    def check_alive(self) -> None:
        """Fail, with its log's end, if a process that should be running has exited."""
        for process in (*self.cjs, *self.llms):
            if process.process.poll() is not None:
                raise AssertionError(
                    f"{process.module} exited with code {process.process.returncode}:\n"
                    f"{process.log_tail()}"
                )

    @property
    def cj_url(self) -> str:
        """The HTTP API of a running CJ process."""
        assert self.cjs, "no CJ process is running"
        return self.cjs[0].url

    async def stop(self) -> None:
        """Stop every process started (by PID)."""
        for process in reversed(self.processes):
            await asyncio.to_thread(process.stop, 20.0)


@contextlib.asynccontextmanager
async def service_fleet(
    stack: ServiceStack,
    log_dir: Path,
    *,
    latency: float,
    in_flight: int,
    llm_grace_seconds: float = 3.0,
    env: dict[str, str] | None = None,
    cj_env: dict[str, str] | None = None,
    llm_env: dict[str, str] | None = None,
    batch_script: BatchScript | None = None,
) -> AsyncIterator[ServiceFleet]:
    """A fake OpenAI server judging by quality and a fleet with fresh databases, no process
    started yet; every process started is stopped by PID at the end, whatever happened."""
    cj_database_url = await stack.new_database()
    llm_database_url = await stack.new_database()
    async with FakeLLMServer(judge_by_quality, delay=latency, batch_script=batch_script) as fake:
        fleet = ServiceFleet(
            stack,
            log_dir,
            fake,
            cj_database_url,
            llm_database_url,
            in_flight,
            llm_grace_seconds=llm_grace_seconds,
            env=env or {},
            cj_env=cj_env or {},
            llm_env=llm_env or {},
        )
        try:
            yield fleet
        finally:
            await fleet.stop()


# --- One CJ batch through the fleet ----------------------------------------------------------


@dataclass(frozen=True)
class BatchEvidence:
    """What a finished batch left behind: events, rows, callbacks, dead letters, logs, HTTP."""

    essay_ids: list[str]
    state: str
    completed_events: list[EventEnvelope[CJAssessmentCompletedV1]]
    failed_events: list[EventEnvelope[CJAssessmentFailedV1]]
    batch_row: dict[str, Any]
    pairs_by_status: dict[str, int]
    score_rows: int
    misjudged_pairs: int
    successful_callbacks: int
    distinct_successful_callbacks: int
    dead_letters: dict[str, int]
    log_problems: list[LogProblem]
    http_answers: dict[tuple[str, int | str], int]
    llm_calls: int
    request_ids: frozenset[str]
    callback_partitions: frozenset[int]
    """The partitions of the callbacks topic that carry this batch's callbacks."""


def assert_completed_once_without_double_counting(evidence: BatchEvidence) -> None:
    """One completed event and no failed one; every essay ranked; each count agrees."""
    assert evidence.failed_events == [], [e.data.error_detail for e in evidence.failed_events]
    assert len(evidence.completed_events) == 1, [str(e.event_id) for e in evidence.completed_events]
    assert evidence.state == "COMPLETED"
    event = evidence.completed_events[0].data
    rankings = event.rankings
    assert sorted(r.essay_id for r in rankings) == evidence.essay_ids
    assert sorted(r.rank for r in rankings) == list(range(1, len(evidence.essay_ids) + 1))
    assert all(r.comparisons > 0 for r in rankings)
    assert evidence.score_rows == len(evidence.essay_ids)

    usage = event.system_metadata.resource_usage
    pairs = evidence.pairs_by_status
    completed = pairs.get("COMPLETED", 0)
    counts = {
        "event": usage.completed_comparisons,
        "batch row": evidence.batch_row["completed"],
        "pairs table": completed,
        "distinct callbacks": evidence.distinct_successful_callbacks,
    }
    assert len(set(counts.values())) == 1, counts
    assert sum(r.comparisons for r in rankings) == 2 * completed
    assert sum(r.wins for r in rankings) == completed
    assert usage.failed_comparisons == evidence.batch_row["failed"] == pairs.get("FAILED", 0)
    assert usage.total_comparisons == evidence.batch_row["planned"] == sum(pairs.values())
    assert pairs.get("PENDING", 0) == 0, pairs
    # Every answer was recorded on the pair it was asked for.
    assert evidence.misjudged_pairs == 0
    assert all(count == 0 for count in evidence.dead_letters.values()), evidence.dead_letters


@dataclass
class FleetBatch:
    """A CJ batch of `essays` essays submitted to a fleet (essay i has quality level i), its
    id once created, and the evidence it leaves; with `poll_api`, the CJ API of the process
    it was submitted to is polled throughout."""

    fleet: ServiceFleet
    essays: int
    entity_ref: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    llm_config: LLMConfig | None = None
    batch_id: str | None = None
    poller: ApiPoller | None = None
    _poll_task: asyncio.Task[None] | None = None

    @property
    def essay_ids(self) -> list[str]:
        """The ids of the batch's essays."""
        return [f"essay-{i:03d}" for i in range(self.essays)]

    async def submit(self, *, poll_api: bool = False) -> str:
        """Publish the CJ request (keyed by its entity ref); wait until the batch exists."""
        fleet = self.fleet
        request = EventEnvelope[CJAssessmentRequestV1](
            event_type=fleet.topic(Topic.CJ_ASSESSMENT_REQUESTED),
            source_service="chaos-test",
            correlation_id=uuid.uuid4(),
            data=CJAssessmentRequestV1(
                entity_ref=self.entity_ref,
                essays_to_process=[
                    EssayToProcess(essay_id=essay_id, text_content=essay_text(level))
                    for level, essay_id in enumerate(self.essay_ids)
                ],
                essay_instructions="Write about your summer.",
                llm_config_overrides=self.llm_config,
            ),
        )
        async with KafkaEventProducer(
            fleet.stack.bootstrap_servers, client_id="chaos-test"
        ) as producer:
            await producer.publish(request.event_type, request, key=self.entity_ref)
        view = await self._view(f"/api/v1/batches?entity_ref={self.entity_ref}", timeout=60)
        self.batch_id = str(view["batch_id"])
        if poll_api:
            self.poller = ApiPoller(fleet.cj_url, [f"/api/v1/batches/{self.batch_id}", READY_PATH])
            self._poll_task = asyncio.create_task(self.poller.run())
        return self.batch_id

    async def _view(
        self, path: str, *, until: Callable[[dict[str, Any]], bool] = bool, timeout: float
    ) -> dict[str, Any]:
        fleet = self.fleet

        async def probe() -> dict[str, Any]:
            fleet.check_alive()
            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    response = await client.get(f"{fleet.cj_url}{path}")
            except httpx.HTTPError:
                return {}
            body: dict[str, Any] = response.json() if response.status_code == 200 else {}
            return body

        return await eventually(
            probe, until=lambda v: bool(v) and until(v), timeout=timeout, interval=0.25, what=path
        )

    async def progress(self, fraction: float, *, timeout: float = 120) -> dict[str, Any]:
        """Wait until `fraction` of the budget is answered; the batch's view then."""
        return await self._view(
            f"/api/v1/batches/{self.batch_id}",
            until=lambda v: (
                v["state"] in TERMINAL_STATES
                or v["progress"]["completed"] + v["progress"]["failed"]
                >= fraction * v["progress"]["budget"]
            ),
            timeout=timeout,
        )

    async def finished(self, *, timeout: float = 200) -> dict[str, Any]:
        """Wait until the batch is in a terminal state and the CJ outbox is relayed."""
        view = await self._view(
            f"/api/v1/batches/{self.batch_id}",
            until=lambda v: v["state"] in TERMINAL_STATES,
            timeout=timeout,
        )
        await eventually(
            self._unpublished_outbox_rows,
            until=lambda n: n == 0,
            timeout=60,
            what="the outbox is relayed",
        )
        return view

    async def _unpublished_outbox_rows(self) -> int:
        self.fleet.check_alive()
        engine = create_engine(self.fleet.cj_database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                count = await connection.scalar(
                    select(func.count())
                    .select_from(event_outbox)
                    .where(event_outbox.c.published_at.is_(None))
                )
        finally:
            await engine.dispose()
        return int(count or 0)

    async def evidence(self) -> BatchEvidence:
        """Everything the assertions look at, read once the batch is finished."""
        assert self.batch_id is not None
        fleet = self.fleet
        view = await self._view(f"/api/v1/batches/{self.batch_id}", timeout=30)
        if self.poller is not None:
            self.poller.stop()
        if self._poll_task is not None:
            await self._poll_task
        bootstrap = fleet.stack.bootstrap_servers
        completed_topic = fleet.topic(Topic.CJ_ASSESSMENT_COMPLETED)
        failed_topic = fleet.topic(Topic.CJ_ASSESSMENT_FAILED)
        callback_topic = fleet.topic(Topic.LLM_COMPARISON_RESULT)
        partitions = await partitions_by_topic(bootstrap, fleet.prefix)
        dlq_topics = [t for t in partitions if t.endswith(DLQ_SUFFIX)]
        wanted = [completed_topic, failed_topic, callback_topic, *dlq_topics]
        contents = await topic_contents(bootstrap, {t: partitions.get(t, []) for t in wanted})
        for topic in wanted:
            assert topic in contents, f"no topic {topic}"
        completed = [
            decode_event(r.value, CJAssessmentCompletedV1)
            for r in contents[completed_topic]
            if r.value is not None
        ]
        failed = [
            decode_event(r.value, CJAssessmentFailedV1)
            for r in contents[failed_topic]
            if r.value is not None
        ]
        rows = await self._batch_rows()
        request_ids: set[uuid.UUID] = rows.pop("request_ids")
        answers = [
            (record.partition, decode_event(record.value, LLMComparisonResultV1).data)
            for record in contents[callback_topic]
            if record.value is not None
        ]
        callbacks = Counter(
            result.request_id
            for _, result in answers
            if result.error_detail is None and result.request_id in request_ids
        )
        return BatchEvidence(
            essay_ids=self.essay_ids,
            state=str(view["state"]),
            completed_events=[e for e in completed if e.data.entity_ref == self.entity_ref],
            failed_events=[e for e in failed if e.data.entity_ref == self.entity_ref],
            batch_row=rows["batch"],
            pairs_by_status=rows["pairs"],
            score_rows=rows["scores"],
            misjudged_pairs=rows["misjudged"],
            successful_callbacks=sum(callbacks.values()),
            distinct_successful_callbacks=len(callbacks),
            dead_letters={topic: len(contents[topic]) for topic in dlq_topics},
            log_problems=log_problems(
                [p.log_path for p in fleet.processes], [FAKE_API_KEY, ESSAY_MARKER]
            ),
            http_answers=self.poller.counts() if self.poller is not None else {},
            llm_calls=len(fleet.fake_llm.received),
            request_ids=frozenset(str(r) for r in request_ids),
            callback_partitions=frozenset(
                partition for partition, result in answers if result.request_id in request_ids
            ),
        )

    async def _batch_rows(self) -> dict[str, Any]:
        batch_id = uuid.UUID(self.batch_id)
        engine = create_engine(self.fleet.cj_database_url, pool_size=1)
        try:
            async with engine.connect() as connection:
                batch = (
                    (
                        await connection.execute(
                            select(cj_batches).where(cj_batches.c.id == batch_id)
                        )
                    )
                    .mappings()
                    .one()
                )
                pairs = (
                    await connection.execute(
                        select(
                            cj_pairs.c.status,
                            cj_pairs.c.request_id,
                            cj_pairs.c.essay_a,
                            cj_pairs.c.essay_b,
                            cj_pairs.c.winner,
                        ).where(cj_pairs.c.batch_id == batch_id)
                    )
                ).all()
                scores = await connection.scalar(
                    select(func.count())
                    .select_from(cj_scores)
                    .where(cj_scores.c.batch_id == batch_id)
                )
        finally:
            await engine.dispose()
        return {
            "batch": dict(batch),
            "pairs": dict(Counter(str(p.status) for p in pairs)),
            # Essay positions are their quality levels: the judge's winner is the higher one.
            "misjudged": sum(
                1
                for p in pairs
                if p.status == PairStatus.COMPLETED
                and p.winner != (ESSAY_A if p.essay_a > p.essay_b else ESSAY_B)
            ),
            "request_ids": {p.request_id for p in pairs},
            "scores": int(scores or 0),
        }

    async def stop_polling(self) -> None:
        """End the API polling, if any (what it found is kept)."""
        if self.poller is not None:
            self.poller.stop()
        if self._poll_task is not None:
            with contextlib.suppress(Exception):
                await self._poll_task


@contextlib.asynccontextmanager
async def batch_under_chaos(
    stack: ServiceStack,
    log_dir: Path,
    *,
    essays: int = 40,
    latency: float = 1.0,
    in_flight: int = 4,
    llm_commit_interval: float | None = None,
) -> AsyncIterator[FleetBatch]:
    """A fleet of one LLM provider and one CJ process, ready for a batch whose answers arrive
    over about a minute (every call takes `latency` seconds, at most `in_flight` at once);
    every process is stopped by PID at the end, whatever happened.

    `llm_commit_interval` (seconds) is how seldom the LLM provider commits its offsets.
    """
    llm_env = (
        {"LLM_COMMIT_INTERVAL_SECONDS": str(llm_commit_interval)}
        if llm_commit_interval is not None
        else {}
    )
    async with service_fleet(
        stack, log_dir, latency=latency, in_flight=in_flight, llm_env=llm_env
    ) as fleet:
        batch = FleetBatch(fleet, essays)
        try:
            # Both start at once; each is awaited to the end so none is left unstopped.
            started = await asyncio.gather(
                fleet.start_llm_provider(), fleet.start_cj(), return_exceptions=True
            )
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            yield batch
        finally:
            await batch.stop_polling()
