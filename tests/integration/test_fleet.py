"""Many instances, proven: two CJ and two LLM provider processes on one broker and one database
per service (topics of four partitions) share the work of two concurrent CJ batches, and the
batches complete exactly once while one instance of each is SIGKILLed or stopped with SIGTERM
mid-batch; in provider batch mode, two LLM provider processes and a restart submit every request
in exactly one provider batch.

Who does what is decided by keys and partition assignment:
- a CJ request is keyed by its entity ref: each batch's ref is chosen, after reading the request
  group's assignment from the CJ logs, to land on a partition of a different CJ process;
- every comparison request is keyed by its request id, so each batch's requests spread over all
  partitions and so over both LLM provider processes; its answer is keyed by the batch id (the
  request's `callback_key`), so one CJ process records all of a batch's callbacks. The first LLM
  process answers both batches alone, slowly (the fake server's latency is raised until the
  second has joined, however long its start takes), then the second joins and takes half the
  partitions, and with them a share of every batch.
The faults hit the CJ process that recorded the most answers and the LLM process with the most
requests in hand; just before them, each process's own metrics show it had its share of the work
(each CJ accepted one batch, both LLM processes answered), so the fault-free run is not repeated
as a test of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from cj_assessment_service.entrypoints.consumers import REQUEST_GROUP
from common_core.events.llm import LLMConfig, LLMMode, LLMProviderName
from common_core.runtime.database import create_engine
from common_core.testing import eventually
from common_core.testing.service_process import ServiceProcess
from common_core.topics import Topic
from llm_provider_service.adapters.tables import provider_batches
from llm_provider_service.testing.fake_batch_endpoints import BatchScript
from tests.integration.chaos_harness import (
    FORBIDDEN_TEXT,
    TERMINAL_STATES,
    BatchEvidence,
    FleetBatch,
    ServiceFleet,
    SharedStack,
    answered_request_ids,
    assert_completed_once_without_double_counting,
    batch_of_requests,
    key_on,
    metric_total,
    service_fleet,
    settled_assignment,
    summarize_log_problems,
)

# Several service processes and thousands of calls: on a loaded 2-core machine a test takes
# minutes (no timing is asserted); the limit only stops a hang.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

PARTITIONS = 4
ESSAYS = 16  # a budget of 80 comparisons per batch
LATENCY = 0.4
JOIN_LATENCY = 3.0
LLM_GRACE_SECONDS = 10.0
IN_FLIGHT = 2
# Faults land once this share of each batch's budget is answered.
FAULT_AT = 0.3
FLEET_ENV = {"TOPIC_PARTITIONS": str(PARTITIONS), "TOPIC_PARTITIONS_DEAD_LETTERS": "1"}
# No hedged requests: a hedge would answer the pair of a lost request, which must instead show
# as a batch that never completes.
CJ_ENV = {"HEDGE_MAX_SHARE": "0"}

Metric = tuple[str, dict[str, str]]
CJ_RECORDED: Metric = ("huleedu_cj_callbacks_processed_total", {"outcome": "recorded"})
CJ_ACCEPTED: Metric = ("huleedu_cj_requests_total", {"outcome": "accepted"})
LLM_ANSWERED: Metric = ("huleedu_llm_callbacks_published_total", {"kind": "comparison"})
LLM_IN_FLIGHT: Metric = ("huleedu_llm_in_flight_requests", {})


async def read(process: ServiceProcess, metric: Metric) -> float:
    """One metric of a running process (summed over the samples that carry its labels)."""
    name, labels = metric
    return await metric_total(process, name, **labels)


@pytest.fixture(scope="module")
async def stack(
    kafka_bootstrap_servers: str, postgres_server_url: str
) -> AsyncIterator[SharedStack]:
    """The session's broker and PostgreSQL; the module's databases are dropped at the end."""
    shared = SharedStack(kafka_bootstrap_servers, postgres_server_url)
    yield shared
    await shared.drop_databases()


async def started(*starts: Awaitable[ServiceProcess]) -> list[ServiceProcess]:
    """Start processes at once; each is awaited to the end, so none is left unstopped."""
    outcomes = await asyncio.gather(*starts, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [o for o in outcomes if isinstance(o, ServiceProcess)]


async def busiest(processes: list[ServiceProcess], metric: Metric) -> ServiceProcess:
    """The process with the highest value of a metric."""
    values = [await read(p, metric) for p in processes]
    return processes[values.index(max(values))]


async def until_positive(process: ServiceProcess, metric: Metric) -> None:
    """Wait until a process's metric is above zero."""
    await eventually(
        lambda: read(process, metric), until=lambda v: v > 0, timeout=90, what=metric[0]
    )


@dataclass
class TwoBatches:
    """Two CJ batches running on two CJ and two LLM provider processes, each of which has work."""

    fleet: ServiceFleet
    batches: list[FleetBatch]

    async def progress(self, fraction: float) -> list[dict[str, object]]:
        """Wait until every batch has answered `fraction` of its budget."""
        return [await batch.progress(fraction) for batch in self.batches]

    async def evidence(self) -> list[BatchEvidence]:
        """Each batch's evidence, once every batch is finished."""
        for batch in self.batches:
            await batch.finished()
        return [await batch.evidence() for batch in self.batches]


async def join_second_llm(fleet: ServiceFleet, first: ServiceProcess) -> ServiceProcess:
    """Start a second LLM provider process and wait until the group has given it its half of the
    requests' partitions (each holds requests of every batch)."""
    second = await fleet.start_llm_provider("llm-2")
    topic = fleet.topic(Topic.LLM_COMPARISON_REQUESTED)
    await settled_assignment([first, second], fleet.llm_group, topic, PARTITIONS)
    return second


async def llm_processes_per_batch(fleet: ServiceFleet) -> dict[str, set[int]]:
    """For each batch, the LLM provider processes (by index in `fleet.llms`) whose own logs show
    they answered a request of it."""
    batch_of = await batch_of_requests(fleet.cj_database_url)
    served: dict[str, set[int]] = {}
    for index, process in enumerate(fleet.llms):
        for request_id in answered_request_ids([process]):
            if request_id in batch_of:
                served.setdefault(batch_of[request_id], set()).add(index)
    return served


@contextlib.asynccontextmanager
async def two_batches_on_two_of_each(
    stack: SharedStack, log_dir: Path
) -> AsyncIterator[TwoBatches]:
    """Two CJ processes, each given one batch's request; an LLM process that answers both
    batches alone at first; a second that joins and takes over one batch's partition."""
    async with service_fleet(
        stack,
        log_dir,
        latency=LATENCY,
        in_flight=IN_FLIGHT,
        llm_grace_seconds=LLM_GRACE_SECONDS,
        env=FLEET_ENV,
        cj_env=CJ_ENV,
    ) as fleet:
        cj_a, cj_b, first_llm = await started(
            fleet.start_cj("cj-a"), fleet.start_cj("cj-b"), fleet.start_llm_provider("llm-1")
        )
        owned = await settled_assignment(
            [cj_a, cj_b], REQUEST_GROUP, fleet.topic(Topic.CJ_ASSESSMENT_REQUESTED), PARTITIONS
        )
        batches = [
            FleetBatch(fleet, ESSAYS, entity_ref=key_on(partitions, PARTITIONS, "fleet"))
            for partitions in owned
        ]
        # The first answers slowly until the second has joined (however long its start takes
        # on a busy machine), so work is left for both; calls still finish within the grace a
        # rebalance gives them.
        fleet.fake_llm.delay = JOIN_LATENCY
        await asyncio.gather(*(batch.submit() for batch in batches))
        await until_positive(first_llm, LLM_ANSWERED)
        await join_second_llm(fleet, first_llm)
        fleet.fake_llm.delay = LATENCY
        yield TwoBatches(fleet, batches)


async def fault_mid_batch(
    run: TwoBatches, fault: Callable[[ServiceProcess], Awaitable[object]]
) -> tuple[list[object], ServiceProcess, ServiceProcess, float, float]:
    """Once every batch is past FAULT_AT, apply `fault` to the CJ process that recorded the most
    answers and the LLM process with the most requests in hand, at once; their results, the
    survivors, and what the survivors had done by then.

    Before the fault, every instance is shown to have its share, by its own metrics: each CJ
    process accepted one batch's request, and both LLM processes answered comparisons; and each
    batch was served by both LLM processes (their logs: one batch spreads over the instances).
    """
    fleet = run.fleet
    served = await eventually(
        lambda: llm_processes_per_batch(fleet),
        until=lambda s: len(s) == len(run.batches) and all(len(p) == 2 for p in s.values()),
        timeout=90,
        interval=1.0,
        what="every batch answered by both LLM processes",
    )
    assert set(served) == {b.batch_id for b in run.batches}
    at_fault = await run.progress(FAULT_AT)
    assert all(view["state"] not in TERMINAL_STATES for view in at_fault), at_fault
    assert [await read(p, CJ_ACCEPTED) for p in fleet.cjs] == [1, 1]
    answered_before = [await read(p, LLM_ANSWERED) for p in fleet.llms]
    assert all(n > 0 for n in answered_before), answered_before
    cj_victim = await busiest(fleet.cjs, CJ_RECORDED)
    llm_victim = await busiest(fleet.llms, LLM_IN_FLIGHT)
    cj_survivor = next(p for p in fleet.cjs if p is not cj_victim)
    llm_survivor = next(p for p in fleet.llms if p is not llm_victim)
    recorded = await read(cj_survivor, CJ_RECORDED)
    answered = await read(llm_survivor, LLM_ANSWERED)
    outcomes = await asyncio.gather(fault(cj_victim), fault(llm_victim))
    return list(outcomes), cj_survivor, llm_survivor, recorded, answered


class TestInstancesLostMidBatch:
    async def test_sigkilled_cj_and_llm_instances_leave_the_survivors_to_finish(
        self, stack: SharedStack, tmp_path: Path
    ) -> None:
        async with two_batches_on_two_of_each(stack, tmp_path) as run:
            _, cj_survivor, llm_survivor, recorded, answered = await fault_mid_batch(
                run, run.fleet.kill
            )
            evidence = await run.evidence()
            recorded_after = await read(cj_survivor, CJ_RECORDED)
            answered_after = await read(llm_survivor, LLM_ANSWERED)

        for batch in evidence:
            assert_completed_once_without_double_counting(batch)
        leaks = [p for p in evidence[0].log_problems if p.kind == FORBIDDEN_TEXT]
        assert leaks == [], summarize_log_problems(leaks)
        # The survivors took over the partitions of the killed and finished their work.
        assert recorded_after > recorded
        assert answered_after > answered

    async def test_sigtermed_cj_and_llm_instances_drain_and_nothing_is_asked_twice(
        self, stack: SharedStack, tmp_path: Path
    ) -> None:
        async with two_batches_on_two_of_each(stack, tmp_path) as run:
            exit_codes, cj_survivor, llm_survivor, recorded, answered = await fault_mid_batch(
                run, run.fleet.stop_gracefully
            )
            evidence = await run.evidence()
            recorded_after = await read(cj_survivor, CJ_RECORDED)
            answered_after = await read(llm_survivor, LLM_ANSWERED)
            calls = len(run.fleet.fake_llm.received)
            llm_processes = [p for p in run.fleet.processes if p.module == "llm_provider_service"]
            answers = answered_request_ids(llm_processes)

        assert exit_codes == [0, 0]
        for batch in evidence:
            assert_completed_once_without_double_counting(batch)
            # No callback twice: each pair was answered once.
            assert batch.successful_callbacks == batch.distinct_successful_callbacks
            # Answered by both LLM processes, the batch's callbacks are on one partition.
            assert len(batch.callback_partitions) == 1, batch.callback_partitions
        assert evidence[0].log_problems == [], summarize_log_problems(evidence[0].log_problems)
        # The drain rule: calls in flight finish within LLM_SHUTDOWN_GRACE_SECONDS (10 s here,
        # well above a call's latency), so none is handed back: no request was answered twice,
        # and every call the fake server took was answered.
        assert [rid for rid, n in answers.items() if n > 1] == []
        assert sum(answers.values()) == calls
        assert recorded_after > recorded
        assert answered_after > answered


BATCH_MODE_ENV = {
    "LLM_BATCH_WINDOW_SECONDS": "0.5",
    "LLM_BATCH_TICK_SECONDS": "0.2",
    "LLM_BATCH_POLL_INITIAL_SECONDS": "0.2",
    "LLM_BATCH_POLL_MAX_SECONDS": "1",
    # A chunk the kill leaves `submitting` is reconciled by its key this soon (the lease must
    # exceed a call's timeout).
    "LLM_REQUEST_TIMEOUT_SECONDS": "10",
    "LLM_BATCH_SUBMIT_LEASE_SECONDS": "15",
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
}
PROVIDER_BATCHES_SUBMITTED: Metric = ("huleedu_llm_provider_batches_total", {"event": "submitted"})


async def provider_chunks(fleet: ServiceFleet) -> list[tuple[str, str | None]]:
    """The LLM provider's chunks (its provider_batches rows): state and provider batch id."""
    engine = create_engine(fleet.llm_database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(provider_batches.c.state, provider_batches.c.provider_batch_id)
            )
            return [(str(state), batch_id) for state, batch_id in rows]
    finally:
        await engine.dispose()


class TestProviderBatchModeWithTwoInstances:
    async def test_a_restart_submits_no_request_in_two_provider_batches(
        self, stack: SharedStack, tmp_path: Path
    ) -> None:
        script = BatchScript(latency=0.3, held=True)
        async with service_fleet(
            stack,
            tmp_path,
            latency=LATENCY,
            in_flight=IN_FLIGHT,
            env=FLEET_ENV,
            cj_env=CJ_ENV,
            llm_env=BATCH_MODE_ENV,
            batch_script=script,
        ) as fleet:
            _, llm_1, _ = await started(
                fleet.start_cj("cj-a"),
                fleet.start_llm_provider("llm-1"),
                fleet.start_llm_provider("llm-2"),
            )
            batch = FleetBatch(
                fleet,
                ESSAYS,
                llm_config=LLMConfig(provider=LLMProviderName.OPENAI, mode=LLMMode.BATCH),
            )
            await batch.submit()

            async def submitter() -> ServiceProcess | None:
                for process in fleet.llms:
                    if await read(process, PROVIDER_BATCHES_SUBMITTED) > 0:
                        return process
                return None

            victim = await eventually(submitter, timeout=90, what="a provider batch submitted")
            assert victim is not None
            instance_id = "llm-1" if victim is llm_1 else "llm-2"
            await fleet.kill(victim)
            await fleet.start_llm_provider(instance_id)
            script.held = False
            await batch.finished()
            evidence = await batch.evidence()
            created = fleet.fake_llm.batches.created
            asked = Counter(
                custom_id
                for _, provider_batch_id, _ in created
                for custom_id in fleet.fake_llm.batches.custom_ids(provider_batch_id)
            )
            synchronous_calls = len(fleet.fake_llm.received)
            chunks = await provider_chunks(fleet)

        assert_completed_once_without_double_counting(evidence)
        assert evidence.successful_callbacks == evidence.distinct_successful_callbacks
        assert synchronous_calls == 0
        # Every request was in exactly one provider batch: none billed twice, none missed.
        assert [rid for rid, n in asked.items() if n > 1] == []
        assert set(asked) == evidence.request_ids
        # Each chunk the service recorded was created at the provider once: one provider batch
        # per chunk, and no provider batch the service does not know.
        assert sorted(str(batch_id) for _, batch_id in chunks) == sorted(
            provider_batch_id for _, provider_batch_id, _ in created
        )
        assert {state for state, _ in chunks} == {"ended"}
