"""`python -m benchmarks.llm_provider.cost`: what a CJ batch costs, per assignment, mode and model.

A 100-essay CJ batch at 10 comparisons per essay (500 comparisons) runs through the whole stack:
the CJ service and the LLM provider service as processes on the real broker and database, the
provider's official SDK (`anthropic` for the Sonnet-class model, `openai` for the mini-class
one) against the fake provider, which bills usage as the providers do, prompt-cache hits and
writes included (`FakePromptCache`), for synchronous calls and batch items alike. The figures
are the batch's own `resource_usage` from its completed event: the summed tokens and the
estimated cost from the dated price table (batch-mode results at the batch discount).

Modes, each with a fresh fake provider (an empty cache):
- `sync`: one synchronous call per comparison, prompt caching off (`LLM_PROMPT_CACHING=false`):
  the reference every other mode is divided by;
- `sync_cached`: synchronous with prompt caching (Anthropic `cache_control` breakpoints after
  the static part and after essay A when those prefixes reach the model's minimum, OpenAI
  `prompt_cache_key`);
- `batch_cached`: the providers' batch APIs with the same caching: the CJ request's
  `llm_config_overrides` say `mode: batch`, CJ passes it on in every comparison, and the LLM
  provider collects the comparisons into provider batches (items ordered so that those sharing
  a prefix are adjacent). The fake runs a batch's items in order, billing each like a
  synchronous call.

Assignments (`scenarios.py`):
- `sample`: the repository's sample (`samples/prompt.md`, `samples/rubric.md`, the 24 sample
  essays used four or five times each): short instructions and rubric, short essays. Its static
  prefix is below both providers' minimum cacheable length, so caching cannot help it; only
  OpenAI's caching of a repeated essay A (when the prefix through it reaches 1024 tokens) can.
- `source_based`: a source-based assignment of the kind schools set (a 900-word source text in
  the instructions, a full analytic marking scheme) with 550-word essays.

Every essay carries its own student header (so no two essays share a prefix beyond the static
part). CJ's stability stop is set out of reach so that every batch spends its whole budget and
the modes compare the same number of comparisons. The fake judge prefers the essay of the higher
student number, in every mode, so the planner sees a consistent judge. The fake's answers are
75 tokens long (a verdict with a two-or-three-sentence justification), as real ones are.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from benchmarks.llm_provider.scenarios import Scenario, sample_scenario, source_based_scenario
from benchmarks.stack import RESULTS_DIR, BenchStack, bench_stack, drop_database
from common_core.events import EssayToProcess
from common_core.events.cj import CJAssessmentCompletedV1, CJAssessmentRequestV1, ResourceUsage
from common_core.events.llm import LLMConfig, LLMProviderName
from common_core.runtime.logging import configure_logging
from common_core.testing.service_process import ServiceProcess, start_service
from huleedu_cli.cj_batch import run_cj_batch
from llm_provider_service.config import PRICE_TABLE_PATH, load_price_table
from llm_provider_service.domain.answers import COMPARISON_SCHEMA
from llm_provider_service.domain.prompts import render_comparison_prompt
from llm_provider_service.testing.fake_llm_server import FakeLLMServer, FakeReply, ReceivedRequest

ESSAYS = 100
COMPARISONS_PER_ESSAY = 10
BUDGET = ESSAYS * COMPARISONS_PER_ESSAY // 2
TARGET_BATCH_CACHED_RATIO = 0.35
MODELS = (
    (LLMProviderName.ANTHROPIC, "claude-sonnet-4-6", "Sonnet-class"),
    (LLMProviderName.OPENAI, "gpt-4o-mini", "mini-class"),
)
_STUDENT = re.compile(r"Student (\d+)\.")
_UNLIMITED = dict.fromkeys(
    (
        "OPENAI_REQUESTS_PER_MINUTE",
        "OPENAI_TOKENS_PER_MINUTE",
        "ANTHROPIC_REQUESTS_PER_MINUTE",
        "ANTHROPIC_TOKENS_PER_MINUTE",
    ),
    "1000000000",
)
# Batch mode: collect each wave of CJ's comparisons into provider batches quickly and poll the
# fake (whose batches end at once) often, so the benchmark takes minutes, not hours.
_BATCH_TIMING = {
    "LLM_BATCH_WINDOW_SECONDS": "1",
    "LLM_BATCH_TICK_SECONDS": "0.2",
    "LLM_BATCH_POLL_INITIAL_SECONDS": "0.2",
    "LLM_BATCH_POLL_MAX_SECONDS": "1",
    "OUTBOX_POLL_INTERVAL_SECONDS": "0.2",
}


@dataclass(frozen=True)
class Mode:
    """How the batch's comparisons are sent."""

    name: str
    caching: bool
    llm_config: dict[str, Any] = field(default_factory=dict)


MODES = (
    Mode("sync", caching=False),
    Mode("sync_cached", caching=True),
    Mode("batch_cached", caching=True, llm_config={"mode": "batch"}),
)


def scenarios() -> list[Scenario]:
    """The assignments, the repository's sample first."""
    return [sample_scenario(), source_based_scenario(ESSAYS)]


def judge_by_student_number(request: ReceivedRequest, _index: int) -> FakeReply:
    """A consistent fake judge: the essay of the higher student number wins."""
    if not request.is_comparison:
        return FakeReply()
    text = json.dumps(request.body)
    numbers = [int(n) for n in _STUDENT.findall(text)]
    a_wins = len(numbers) < 2 or numbers[0] > numbers[1]
    verdict = {
        "winner": "essay_a" if a_wins else "essay_b",
        "justification": (
            "The better essay takes a clear position and supports it with evidence that it "
            "explains rather than lists. The other essay makes relevant points but leaves its "
            "counter-argument unanswered."
        ),
        "confidence": 4,
    }
    return FakeReply(content=json.dumps(verdict))


def batch_request(
    scenario: Scenario, provider: LLMProviderName, model: str, mode: Mode
) -> CJAssessmentRequestV1:
    """The 100-essay request of an assignment, each essay under its own student header."""
    essays = [
        EssayToProcess(essay_id=f"student-{i:03d}", text_content=scenario.essay(i))
        for i in range(ESSAYS)
    ]
    return CJAssessmentRequestV1(
        entity_ref=f"cost-{scenario.name}-{mode.name}-{model}-{uuid.uuid4().hex[:6]}",
        essays_to_process=essays,
        essay_instructions=scenario.instructions,
        judge_rubric=scenario.rubric,
        llm_config_overrides=LLMConfig.model_validate(
            {"provider": provider, "model": model, **mode.llm_config}
        ),
        max_comparisons=BUDGET,
        # Every mode spends the whole budget: the reliability stop (default target 0.9) would end
        # each run after a different number of comparisons, and the ratios would compare unlike
        # amounts of judging.
        target_reliability=0.999,
    )


def prompt_lengths(scenario: Scenario) -> dict[str, int]:
    """The comparison prompt's static part (system prompt, instructions, rubric), estimated at
    4 characters per token as the service does (Anthropic's system prompt also carries the
    answer schema), and the mean essay; the prefix through essay A is the two added."""
    prompt = render_comparison_prompt(
        essay_a="",
        essay_b="",
        instructions=scenario.instructions,
        judge_rubric=scenario.rubric,
        language="en",
    )
    schema = len(json.dumps(COMPARISON_SCHEMA, sort_keys=True)) + 60  # and its framing sentence
    essay_chars = [len(scenario.essay(i)) for i in range(ESSAYS)]
    return {
        "openai": len(prompt.static_prefix) // 4,
        "anthropic": (len(prompt.static_prefix) + schema) // 4,
        "mean_essay": sum(essay_chars) // len(essay_chars) // 4,
    }


@asynccontextmanager
async def _llm_service(
    stack: BenchStack, prefix: str, fake: FakeLLMServer, mode: Mode, log_dir: Path
) -> AsyncIterator[ServiceProcess]:
    service = await start_service(
        "llm_provider_service",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
            # Batch mode keeps its state in the service's own database on this server.
            "DATABASE_URL": stack.postgres_server_url,
            "TOPIC_PREFIX": prefix,
            "LLM_CONSUMER_GROUP": f"llm_provider_service.{prefix}",
            "LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "ANTHROPIC_API_KEY": "bench-key",
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "LLM_PROMPT_CACHING": "true" if mode.caching else "false",
            "LLM_REQUEST_TIMEOUT_SECONDS": "30",
            **_BATCH_TIMING,
            **_UNLIMITED,
        },
        log_dir=log_dir,
        keep_provider_keys=True,  # the fake server's keys
        unset_prefixes=("OPENAI_", "ANTHROPIC_", "LLM_"),
        ready_path="/healthz/ready",
    )
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop, 30.0)


def _figures(usage: ResourceUsage, reference: ResourceUsage | None) -> dict[str, Any]:
    cost = usage.estimated_cost_usd
    ratio = None
    if reference is not None and cost is not None and reference.estimated_cost_usd:
        ratio = round(cost / reference.estimated_cost_usd, 3)
    return {
        "comparisons": usage.completed_comparisons,
        "prompt_tokens": usage.prompt_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "completion_tokens": usage.completion_tokens,
        "estimated_cost_usd": cost,
        "ratio_to_sync": ratio,
    }


Usages = dict[str, dict[str, dict[str, ResourceUsage]]]  # scenario -> model -> mode -> usage


async def run_cost_benchmark(stack: BenchStack, log_dir: Path) -> dict[str, Any]:
    """Run every assignment, mode and model; the `cost` entry of llm_provider.json."""
    prefix = f"bench.cost{uuid.uuid4().hex[:8]}"
    database = f"bench_cost_{uuid.uuid4().hex[:10]}"
    cj_url = make_url(stack.postgres_server_url).set(database=database)
    cj = await start_service(
        "cj_assessment_service",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
            "TOPIC_PREFIX": prefix,
            "DATABASE_URL": cj_url.render_as_string(hide_password=False),
            "LOG_LEVEL": "WARNING",
            # Never stable: every batch spends its whole budget, so the modes compare equal work.
            "STABILITY_THRESHOLD": "1e-9",
        },
        log_dir=log_dir,
    )
    assignments = scenarios()
    usages: Usages = {}
    try:
        for mode in MODES:
            for scenario in assignments:
                # A fresh fake (an empty cache) per assignment and mode.
                async with (
                    FakeLLMServer(judge_by_student_number) as fake,
                    _llm_service(stack, prefix, fake, mode, log_dir),
                ):
                    for provider, model, label in MODELS:
                        completed: CJAssessmentCompletedV1 = await run_cj_batch(
                            batch_request(scenario, provider, model, mode),
                            bootstrap_servers=stack.kafka_bootstrap_servers,
                            topic_prefix=prefix,
                            cj_url=cj.url,
                            timeout=1800.0,
                        )
                        usage = completed.system_metadata.resource_usage
                        usages.setdefault(scenario.name, {}).setdefault(model, {})[mode.name] = (
                            usage
                        )
                        reference = usages[scenario.name][model].get("sync")
                        _print_line(scenario.name, label, model, mode.name, usage, reference)
    finally:
        await asyncio.to_thread(cj.stop, 30.0)
        await drop_database(stack.postgres_server_url, database)
    return _report(assignments, usages)


def _report(assignments: list[Scenario], usages: Usages) -> dict[str, Any]:
    table = load_price_table(PRICE_TABLE_PATH)
    report: dict[str, Any] = {}
    met: dict[str, dict[str, bool | None]] = {}
    for scenario in assignments:
        lengths = prompt_lengths(scenario)
        models: dict[str, Any] = {}
        for provider, model, label in MODELS:
            runs = usages[scenario.name][model]
            price = table.price(provider.value, model)
            minimum = price.min_cacheable_tokens if price is not None else None
            figures = {name: _figures(usage, runs["sync"]) for name, usage in runs.items()}
            ratio = figures["batch_cached"]["ratio_to_sync"]
            target_met = None if ratio is None else ratio <= TARGET_BATCH_CACHED_RATIO
            static = lengths[provider.value]
            models[model] = {
                "class": label,
                "provider": provider.value,
                "static_prefix_tokens": static,
                "prefix_through_essay_a_tokens": static + lengths["mean_essay"],
                "min_cacheable_tokens": minimum,
                "static_prefix_cacheable": minimum is not None and static >= minimum,
                "modes": figures,
                "batch_cached_target_met": target_met,
            }
            met.setdefault(scenario.name, {})[model] = target_met
        report[scenario.name] = {
            "assignment": scenario.description,
            "mean_essay_tokens": lengths["mean_essay"],
            "models": models,
        }
    everywhere = [value for by_model in met.values() for value in by_model.values()]
    return {
        "path": "CJ request -> cj_assessment_service -> Kafka -> llm_provider_service -> "
        "official SDK -> fake provider (billing prompt-cache hits and writes, sync calls and "
        "batch items alike) -> callbacks -> completed event's resource_usage",
        "essays": ESSAYS,
        "comparisons_per_essay": COMPARISONS_PER_ESSAY,
        "comparisons": BUDGET,
        "completion_tokens_per_answer": "75 (a verdict with a two-or-three-sentence justification)",
        "price_table_as_of": table.as_of,
        "scenarios": report,
        "target": {
            "batch_cached_ratio_at_most": TARGET_BATCH_CACHED_RATIO,
            "met": (
                all(value is True for value in everywhere)
                if all(value is not None for value in everywhere)
                else None
            ),
            "by_scenario": met,
        },
    }


def _print_line(
    scenario: str,
    label: str,
    model: str,
    mode: str,
    usage: ResourceUsage,
    reference: ResourceUsage | None,
) -> None:
    figures = _figures(usage, reference)
    cost = figures["estimated_cost_usd"]
    shown = f"${cost:.4f}" if cost is not None else "unknown"
    print(
        f"llm_provider cost: {scenario} {label} {model} {mode:>12}: {shown} "
        f"(ratio to sync {figures['ratio_to_sync']}; {figures['prompt_tokens']} prompt tokens, "
        f"{figures['cached_prompt_tokens']} cached, {figures['cache_write_tokens']} cache writes, "
        f"{figures['completion_tokens']} completion, {figures['comparisons']} comparisons)",
        flush=True,
    )


def main() -> int:
    """Run the cost benchmark alone; writes its `cost` entry into llm_provider.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    configure_logging("benchmarks.llm_provider.cost", "WARNING")
    log_dir = Path(tempfile.mkdtemp(prefix="bench-cost-logs-"))
    with bench_stack() as stack:
        cost = asyncio.run(run_cost_benchmark(stack, log_dir))
    out = RESULTS_DIR / "llm_provider.json"
    results = json.loads(out.read_text()) if out.exists() else {"benchmark": "llm_provider"}
    results["cost"] = cost
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"llm_provider cost: wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
