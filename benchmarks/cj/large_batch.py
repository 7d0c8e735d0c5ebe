"""`large_batch`: 3,000 essays end to end, full length by essay-set upload beside short inline.

Both cases run the real stack the way an upstream does: the CJ and LLM provider services as
processes (the offline heuristic judge answers at once), the CLI's `run_cj_batch` publishing the
request and waiting for the completed event. The reference is 3,000 short essays (about 12
words) sent inline; the measured case is 3,000 essays of about 600 words (≈ 11 MB of request
JSON, over the broker's 1 MB message limit), which the CLI uploads to the CJ service and sends by
reference. Same budget (two comparisons per essay), fresh service processes and database per
case, so the CJ process's peak RSS (VmHWM) belongs to that case alone.

`python -m benchmarks.cj.large_batch` runs only this benchmark and updates its key in
benchmarks/results/cj.json; `python -m benchmarks.cj` runs it with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack
from common_core.events import EssayToProcess, EventEnvelope, LLMProviderName
from common_core.events.cj import CJAssessmentCompletedV1
from common_core.events.envelope import encode_envelope
from common_core.runtime.database import asyncpg_dsn
from common_core.testing.service_process import running_service
from huleedu_cli.cj_batch import build_cj_request, request_envelope, run_cj_batch
from huleedu_cli.essay_upload import INLINE_REQUEST_LIMIT_BYTES
from tests.integration.long_essays import INSTRUCTIONS, long_essay

ESSAYS = 3000
COMPARISONS_PER_ESSAY = 2
FULL_WORDS = 600
SHORT_WORDS = 12


def _peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set size (VmHWM) in MB, where /proc has it."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


async def _batch_waves(server_url: str, database: str, entity_ref: str) -> int | None:
    url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        waves = await connection.fetchval(
            "SELECT waves FROM cj_batches WHERE entity_ref = $1", entity_ref
        )
    finally:
        await connection.close()
    return int(waves) if waves is not None else None


async def _drop_database(server_url: str, name: str) -> None:
    admin = make_url(server_url).set(database="postgres").render_as_string(hide_password=False)
    connection = await asyncpg.connect(asyncpg_dsn(admin))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _case(stack: BenchStack, words: int) -> dict[str, Any]:
    essays = [
        EssayToProcess(essay_id=f"essay-{i:05d}", text_content=long_essay(i, words))
        for i in range(ESSAYS)
    ]
    budget = COMPARISONS_PER_ESSAY * ESSAYS
    request = build_cj_request(
        essays,
        entity_ref=f"bench-large-{uuid.uuid4().hex[:8]}",
        essay_instructions=INSTRUCTIONS,
        provider=LLMProviderName.HEURISTIC,
        max_comparisons=budget,
    )
    database = f"bench_large_{uuid.uuid4().hex[:8]}"
    prefix = f"benchlarge{uuid.uuid4().hex[:8]}"
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
    with tempfile.TemporaryDirectory(prefix="bench-large-") as logs:
        try:
            async with (
                running_service("cj_assessment_service", env=env, log_dir=Path(logs)) as cj,
                running_service(
                    "llm_provider_service",
                    env={**env, "SERVICE_DATABASE_NAME": f"{database}_llm"},
                    log_dir=Path(logs),
                ),
            ):
                start = time.perf_counter()
                completed = await run_cj_batch(
                    request,
                    bootstrap_servers=stack.kafka_bootstrap_servers,
                    topic_prefix=prefix,
                    cj_url=cj.url,
                    timeout=1800,
                    on_upload=lambda _n, _ref: uploaded_after.append(time.perf_counter() - start),
                )
                wall = time.perf_counter() - start
                peak_rss = _peak_rss_mb(cj.process.pid)
            waves = await _batch_waves(stack.postgres_server_url, database, request.entity_ref)
        finally:
            await _drop_database(stack.postgres_server_url, database)
            await _drop_database(stack.postgres_server_url, f"{database}_llm")
    completed_bytes = encode_envelope(
        EventEnvelope[CJAssessmentCompletedV1](
            event_type=f"{prefix}.cj_assessment.completed.v1",
            source_service="cj_assessment_service",
            correlation_id=uuid.uuid4(),
            data=completed,
        )
    )
    ranked = sorted(r.essay_id for r in completed.rankings)
    return {
        "essays": ESSAYS,
        "words_per_essay": round(sum(len(e.text_content.split()) for e in essays) / ESSAYS),
        "budget": budget,
        "inline_request_bytes": len(encode_envelope(request_envelope(request))),
        "sent_by_reference": bool(uploaded_after),
        "upload_seconds": round(uploaded_after[0], 2) if uploaded_after else None,
        "wall_seconds": round(wall, 1),
        "cj_peak_rss_mb": peak_rss,
        "waves": waves,
        "completed_comparisons": completed.system_metadata.resource_usage.completed_comparisons,
        "completion_reason": completed.completion_reason.value,
        "every_essay_ranked_once": ranked == sorted(e.essay_id for e in essays),
        "completed_event_bytes": len(completed_bytes),
        "completed_event_gzip_bytes": len(gzip.compress(completed_bytes)),
    }


async def run(stack: BenchStack) -> dict[str, Any]:
    """The reference (short, inline) and the measured case (full length, by reference)."""
    reference = await _case(stack, SHORT_WORDS)
    full_length = await _case(stack, FULL_WORDS)
    result = {
        "reference_short_inline": reference,
        "full_length_by_reference": full_length,
        "inline_limit_bytes": INLINE_REQUEST_LIMIT_BYTES,
        "broker_message_limit_bytes": 1_048_588,
    }
    for name in ("reference_short_inline", "full_length_by_reference"):
        case = result[name]
        assert isinstance(case, dict)
        print(
            f"bench: large_batch {name}: {case['essays']} essays x {case['words_per_essay']} "
            f"words ({case['inline_request_bytes'] / 1e6:.2f} MB inline, "
            f"{'by reference' if case['sent_by_reference'] else 'inline'}), "
            f"{case['completed_comparisons']} comparisons in {case['waves']} waves: "
            f"{case['wall_seconds']} s, CJ peak RSS {case['cj_peak_rss_mb']} MB, completed event "
            f"{case['completed_event_bytes'] / 1e3:.0f} kB "
            f"({case['completed_event_gzip_bytes'] / 1e3:.0f} kB gzip)",
            flush=True,
        )
    return result


def main() -> int:
    """Run only this benchmark and update its key in results/cj.json."""
    with bench_stack() as stack:
        figures = asyncio.run(run(stack))
    path = RESULTS_DIR / "cj.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["large_batch"] = figures
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench: large_batch written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
