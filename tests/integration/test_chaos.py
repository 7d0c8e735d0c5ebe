"""Chaos: a CJ batch of 40 essays, answered over about a minute through the real LLM provider
and CJ processes, survives a SIGKILL mid-batch of the Kafka broker, of PostgreSQL and of the LLM
provider process, each restarted on its data (the CJ process's own SIGKILL test is in
services/cj_assessment_service/tests/integration/test_service_process.py).

Every run ends in exactly one completed event with every essay ranked, no comparison counted
twice and nothing dead-lettered; through the broker and database outages the CJ API answers
only 2xx or 503 and every log line stays a JSON object without a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.chaos_harness import (
    FORBIDDEN_TEXT,
    READY_PATH,
    TERMINAL_STATES,
    BatchEvidence,
    CrashableStack,
    assert_completed_once_without_double_counting,
    batch_under_chaos,
    crashable_stack,
    summarize_log_problems,
    unexpected_answers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The kill comes once this share of the comparison budget is answered.
KILL_AT = 0.3
# How long a killed broker or database stays down before its restart begins.
OUTAGE_SECONDS = 4.0


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[CrashableStack]:
    """A broker and a PostgreSQL of this module's own: killing them touches no other test."""
    async with crashable_stack() as running:
        yield running


def assert_clean_logs_and_http(evidence: BatchEvidence) -> None:
    """Every log line a JSON object without a traceback; the API, polled through the outage
    (readiness said 503 during it), answered only 2xx or 503."""
    assert (READY_PATH, 503) in evidence.http_answers, evidence.http_answers
    unexpected = unexpected_answers(evidence.http_answers)
    # One message with both, so a failing run shows everything that went wrong.
    report = (
        f"log lines breaking the rules:\n{summarize_log_problems(evidence.log_problems)}\n"
        f"HTTP answers neither 2xx nor 503: {unexpected}"
    )
    assert (evidence.log_problems, unexpected) == ([], {}), report


class TestSigkillMidBatch:
    async def test_broker_killed_and_restarted_batch_completes_once(
        self, stack: CrashableStack, tmp_path: Path
    ) -> None:
        async with batch_under_chaos(stack, tmp_path) as run:
            await run.submit(poll_api=True)
            at_kill = await run.progress(KILL_AT)
            await stack.kill_broker()
            await asyncio.sleep(OUTAGE_SECONDS)
            await stack.restart_broker()
            await run.finished()
            evidence = await run.evidence()

        assert at_kill["state"] not in TERMINAL_STATES
        assert_completed_once_without_double_counting(evidence)
        assert_clean_logs_and_http(evidence)

    async def test_postgres_killed_and_restarted_batch_completes_once(
        self, stack: CrashableStack, tmp_path: Path
    ) -> None:
        async with batch_under_chaos(stack, tmp_path) as run:
            await run.submit(poll_api=True)
            at_kill = await run.progress(KILL_AT)
            await stack.kill_postgres()
            await asyncio.sleep(OUTAGE_SECONDS)
            await stack.restart_postgres()
            await run.finished()
            evidence = await run.evidence()

        assert at_kill["state"] not in TERMINAL_STATES
        assert_completed_once_without_double_counting(evidence)
        assert_clean_logs_and_http(evidence)

    async def test_llm_provider_killed_and_restarted_batch_completes_once(
        self, stack: CrashableStack, tmp_path: Path
    ) -> None:
        # The provider commits its offsets only on rebalance and on shutdown: the kill lands
        # after every callback so far was acknowledged and none of their offsets committed, so
        # the restarted process answers all of those requests a second time.
        async with batch_under_chaos(stack, tmp_path, llm_commit_interval=3600) as run:
            await run.submit(poll_api=True)
            at_kill = await run.progress(KILL_AT)
            calls_at_kill = len(run.fleet.fake_llm.received)
            await run.fleet.kill(run.fleet.llms[0])
            await run.fleet.start_llm_provider()
            await run.finished()
            evidence = await run.evidence()

        assert at_kill["state"] not in TERMINAL_STATES
        # Some calls were in flight or still to come: the kill really came mid-batch.
        assert calls_at_kill < evidence.llm_calls
        assert evidence.successful_callbacks > evidence.distinct_successful_callbacks
        assert_completed_once_without_double_counting(evidence)
        leaks = [p for p in evidence.log_problems if p.kind == FORBIDDEN_TEXT]
        assert leaks == [], summarize_log_problems(leaks)
