"""`huleedu`: the upstream role on the command line (submit a CJ batch, follow it, save results)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Annotated

import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from common_core.events import (
    CJAssessmentCompletedV1,
    HumanJudge,
    HumanJudgingRequest,
    LLMProviderName,
)
from common_core.topics import DEFAULT_TOPIC_PREFIX
from huleedu_cli.api_token import ApiTokenFileOption, ApiTokenOption, read_api_token
from huleedu_cli.cj_batch import build_cj_request, new_entity_ref, run_cj_batch
from huleedu_cli.dlq_commands import dlq_app
from huleedu_cli.erase_commands import erase_app
from huleedu_cli.errors import EXIT_INTERRUPTED, CJBatchFailedError, ClientError, InputError
from huleedu_cli.inputs import (
    IntendedPlacement,
    check_unique_ids,
    load_anchors,
    load_essays,
    load_intended_order,
    read_text_file,
)
from huleedu_cli.judges_client import parse_deadline, parse_judge
from huleedu_cli.judges_commands import judges_app
from huleedu_cli.kafka_client import DEFAULT_BOOTSTRAP_SERVERS, kafka_security_from_environment
from huleedu_cli.report import render_ranking, write_chart, write_ranking_csv, write_result_json
from huleedu_cli.status_client import DEFAULT_CJ_URL, BatchStatus, CJStatusClient
from huleedu_cli.topic_commands import topics_app

app = typer.Typer(
    help="HuleEdu upstream client: comparative-judgement batches over Kafka, dead letters, topics,"
    " erasure of learner data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cj_app = typer.Typer(help="Comparative judgement (CJ) batches.", no_args_is_help=True)
app.add_typer(cj_app, name="cj")
app.add_typer(dlq_app, name="dlq")
app.add_typer(topics_app, name="topics")
app.add_typer(erase_app, name="erase")
app.add_typer(judges_app, name="judges")


@app.callback()
def _quiet_service_logs() -> None:
    """Keep the shared runtime's info logs (topic creation and such) out of the CLI's output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class ProgressView:
    """Turns status API answers into a rich progress bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def __call__(self, status: BatchStatus | None) -> None:
        if status is None:
            self._progress.update(self._task, description="waiting for the CJ service", detail="")
            return
        counts = status.progress
        budget = counts.budget if counts.budget is not None else counts.planned
        self._progress.update(
            self._task,
            completed=min(counts.percent_complete, 100.0),
            description=status.state.lower(),
            detail=f"{counts.completed}/{budget} comparisons"
            + (f", {counts.failed} failed" if counts.failed else ""),
        )


def _load_prompt(prompt: str | None, prompt_file: Path | None) -> str:
    if prompt is not None and prompt_file is not None:
        raise InputError("give either --prompt or --prompt-file, not both")
    if prompt_file is not None:
        return read_text_file(prompt_file, what="prompt file").strip()
    return (prompt or "").strip()


def _human_judging(
    judges: list[str] | None, share: float, deadline: str
) -> HumanJudgingRequest | None:
    """The request's human judging from `--judge`, `--human-share` and `--human-deadline`."""
    if not judges:
        return None
    try:
        return HumanJudgingRequest(
            judges=[HumanJudge.model_validate(parse_judge(text)) for text in judges],
            share=share,
            deadline=parse_deadline(deadline),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "human judging"
        raise InputError(f"--judge: {where}: {first['msg']}") from None


def _save_outputs(
    console: Console,
    completed: CJAssessmentCompletedV1,
    intended: dict[str, IntendedPlacement] | None,
    out: Path | None,
    chart: Path | None,
) -> None:
    if out is not None:
        write_ranking_csv(out / "ranking.csv", completed, intended)
        write_result_json(out / "result.json", completed, intended)
        console.print(f"wrote {out / 'ranking.csv'} and {out / 'result.json'}")
    if chart is not None:
        write_chart(chart, completed)
        console.print(f"wrote {chart}")


def _print_failure(error: CJBatchFailedError) -> None:
    detail = error.failed.error_detail
    console = _stderr()
    console.print(f"[bold red]CJ batch {error.failed.entity_ref} failed[/]")
    console.print(f"error_detail: code={detail.code.value} retryable={detail.retryable}")
    console.print(f"  message: {detail.message}")
    console.print(f"  service: {detail.service} operation: {detail.operation}")
    if detail.details:
        console.print(f"  details: {json.dumps(detail.details, default=str)}")


@cj_app.command("submit")
def submit(
    path: Annotated[Path, typer.Argument(help="A folder of .txt/.md essays, or a CSV file.")],
    *,
    prompt: Annotated[
        str | None, typer.Option(help="The assignment the students answered.")
    ] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="Read the prompt from a file.")] = None,
    rubric_file: Annotated[Path | None, typer.Option(help="What makes an essay better.")] = None,
    anchors: Annotated[
        Path | None, typer.Option(help="Folder of anchor essays with grades.csv.")
    ] = None,
    provider: Annotated[LLMProviderName | None, typer.Option(help="LLM provider.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name for the provider.")] = None,
    budget: Annotated[int | None, typer.Option(min=1, help="Maximum comparisons.")] = None,
    entity_ref: Annotated[str | None, typer.Option(help="Upstream batch reference.")] = None,
    language: Annotated[str, typer.Option(help="Language of the essays.")] = "en",
    kafka: Annotated[
        str, typer.Option(envvar="KAFKA_BOOTSTRAP_SERVERS", help="Kafka bootstrap servers.")
    ] = DEFAULT_BOOTSTRAP_SERVERS,
    cj_url: Annotated[str, typer.Option(help="CJ service base URL.")] = DEFAULT_CJ_URL,
    topic_prefix: Annotated[
        str, typer.Option(envvar="TOPIC_PREFIX", help="Topic prefix.")
    ] = DEFAULT_TOPIC_PREFIX,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for the outcome.")] = 600.0,
    connect_timeout: Annotated[
        float, typer.Option(min=0.5, help="Seconds to reach the broker.")
    ] = 10.0,
    out: Annotated[
        Path | None, typer.Option(help="Write ranking.csv and result.json here.")
    ] = None,
    chart: Annotated[Path | None, typer.Option(help="Write a PNG chart of the scores.")] = None,
    intended_order: Annotated[
        Path | None, typer.Option(help="CSV essay_id,intended_rank[,intended_grade].")
    ] = None,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
    judge: Annotated[
        list[str] | None,
        typer.Option(
            help="A human judge beside the AI, as ID=Display Name (repeat for each judge); "
            "their links: huleedu judges links <batch id>.",
            show_default=False,
        ),
    ] = None,
    human_share: Annotated[
        float,
        typer.Option(
            min=0.01,
            max=0.5,
            help="With --judge: share of all comparisons for the judges, on top of the budget.",
        ),
    ] = 0.1,
    human_deadline: Annotated[
        str,
        typer.Option(
            help="With --judge: when unjudged pairs are released (ISO time, or +30m, +2h, +1d)."
        ),
    ] = "+1d",
) -> None:
    """Submit essays as a CJ batch, follow its progress, print and save the ranking."""
    console = Console(highlight=False)
    batch_ref = entity_ref or new_entity_ref()
    try:
        essays = load_essays(path)
        anchor_essays = load_anchors(anchors) if anchors is not None else []
        check_unique_ids(essays, anchor_essays)
        instructions = _load_prompt(prompt, prompt_file)
        rubric = read_text_file(rubric_file, what="rubric file").strip() if rubric_file else None
        intended = load_intended_order(intended_order) if intended_order else None
        token = read_api_token(api_token, api_token_file)
        people = _human_judging(judge, human_share, human_deadline)
        request = build_cj_request(
            essays,
            entity_ref=batch_ref,
            essay_instructions=instructions,
            judge_rubric=rubric or None,
            anchors=anchor_essays,
            provider=provider,
            model=model,
            max_comparisons=budget,
            language=language,
            human_judging=people,
        )
        console.print(
            f"submitting {len(essays)} essays"
            + (f" and {len(anchor_essays)} anchors" if anchor_essays else "")
            + f" as {request.entity_ref} to {kafka}"
            + (
                f", with {len(people.judges)} human judge(s) on {people.share:.0%} of the "
                f"comparisons until {people.deadline:%Y-%m-%d %H:%M %Z} (their links: huleedu "
                "judges links <batch id>)"
                if people
                else ""
            )
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("publishing request", total=100.0, detail="")
            completed = asyncio.run(
                run_cj_batch(
                    request,
                    bootstrap_servers=kafka,
                    security=kafka_security_from_environment(),
                    topic_prefix=topic_prefix,
                    cj_url=cj_url,
                    timeout=timeout,
                    connect_timeout=connect_timeout,
                    api_token=token,
                    on_progress=ProgressView(progress, task),
                    on_upload=lambda count, reference: console.print(
                        f"too large for one Kafka message: uploaded {count} essays to the CJ "
                        f"service as essay set {reference.essay_set_id}"
                    ),
                )
            )
            progress.update(task, completed=100.0, description="completed", detail="")
        render_ranking(console, completed, intended)
        _save_outputs(console, completed, intended, out, chart)
    except CJBatchFailedError as error:
        _print_failure(error)
        raise typer.Exit(error.exit_code) from None
    except ClientError as error:
        _stderr().print(f"error: {error.message}")
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        # A published request keeps running in the CJ service; only the waiting stops here.
        _stderr().print(f"interrupted; if it was submitted: huleedu cj status {batch_ref}")
        raise typer.Exit(EXIT_INTERRUPTED) from None


@cj_app.command("status")
def status(
    entity_ref: Annotated[str, typer.Argument(help="The upstream batch reference.")],
    cj_url: Annotated[str, typer.Option(help="CJ service base URL.")] = DEFAULT_CJ_URL,
    results: Annotated[bool, typer.Option(help="Also print the batch's results.")] = False,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
) -> None:
    """Show where a batch stands (and optionally its results) from the CJ service's API."""

    async def fetch() -> tuple[BatchStatus | None, dict[str, object] | None]:
        token = read_api_token(api_token, api_token_file)
        async with CJStatusClient(cj_url, api_token=token) as client:
            found = await client.batch_for_entity(entity_ref)
            found_results = (
                await client.batch_results(found.batch_id) if results and found else None
            )
            return found, found_results

    console = Console(highlight=False)
    try:
        found, found_results = asyncio.run(fetch())
    except ClientError as error:
        _stderr().print(f"error: {error.message}")
        raise typer.Exit(error.exit_code) from None
    if found is None:
        _stderr().print(f"error: no batch for {entity_ref} at {cj_url}")
        raise typer.Exit(1)
    counts = found.progress
    console.print(
        f"{found.entity_ref}: batch {found.batch_id} {found.state}, "
        f"{counts.completed}/{counts.budget if counts.budget is not None else counts.planned} "
        f"comparisons ({counts.percent_complete:.0f}%), {counts.failed} failed, "
        f"{counts.pending} pending, {counts.essays} essays"
    )
    if results:
        console.print_json(data=found_results)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
