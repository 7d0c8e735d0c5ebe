"""`huleedu judges`: an organiser invites teachers to judge a running CJ batch beside the AI and
hands each their private link. A link is the judge's credential: give it to that judge only."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from huleedu_cli.api_token import ApiTokenFileOption, ApiTokenOption, read_api_token
from huleedu_cli.cli_options import JsonOption, client_errors
from huleedu_cli.judges_client import (
    BatchJudges,
    invite_judges,
    judge_links,
    parse_deadline,
    parse_judge,
)
from huleedu_cli.status_client import DEFAULT_CJ_URL

judges_app = typer.Typer(
    help="Human judges beside the AI: invite teachers to a batch, list their links.",
    no_args_is_help=True,
)

BatchIdArgument = Annotated[str, typer.Argument(help="The CJ batch id (see `huleedu cj status`).")]
CJUrlOption = Annotated[str, typer.Option(help="CJ service base URL.")]


def render_judges(console: Console, judges: BatchJudges) -> None:
    """One row per judge: id, name, progress and the private link."""
    table = Table(title=f"judges of batch {judges.batch_id}", title_justify="left")
    for column in ("judge", "name", "judged", "assigned", "skipped", "remaining", "link"):
        table.add_column(column, overflow="fold")
    for judge in judges.judges:
        table.add_row(
            judge.judge_id,
            judge.display_name,
            str(judge.judged),
            str(judge.assigned),
            str(judge.skipped),
            str(judge.remaining),
            judge.link,
        )
    console.print(table)
    if judges.judges:
        expires = judges.judges[0].expires_at.isoformat()
        console.print(f"links work until {expires}; give each judge only their own", markup=False)


def _print(judges: BatchJudges, as_json: bool) -> None:
    if as_json:
        print(json.dumps(judges.model_dump(mode="json")))
    else:
        render_judges(Console(highlight=False, soft_wrap=True), judges)


@judges_app.command("invite")
def invite(
    batch_id: BatchIdArgument,
    *,
    judge: Annotated[
        list[str],
        typer.Option(
            help="A judge as ID=Display Name (repeat for each judge).", show_default=False
        ),
    ],
    deadline: Annotated[
        str,
        typer.Option(help="When unjudged pairs are released: an ISO time, or +30m, +2h, +1d."),
    ],
    share: Annotated[
        float,
        typer.Option(
            help="Share of all the batch's comparisons for the judges (0-0.5], on top of the "
            "AI's budget."
        ),
    ] = 0.1,
    cj_url: CJUrlOption = DEFAULT_CJ_URL,
    as_json: JsonOption = False,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
) -> None:
    """Invite human judges to a running batch and print their private links (scope cj:write)."""
    with client_errors():
        judges = [parse_judge(text) for text in judge]
        when = parse_deadline(deadline)
        token = read_api_token(api_token, api_token_file)
        invited = asyncio.run(
            invite_judges(
                cj_url, batch_id, judges=judges, share=share, deadline=when, api_token=token
            )
        )
    _print(invited, as_json)


@judges_app.command("links")
def links(
    batch_id: BatchIdArgument,
    *,
    cj_url: CJUrlOption = DEFAULT_CJ_URL,
    as_json: JsonOption = False,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
) -> None:
    """A batch's judges with their private links and progress (scope cj:read)."""
    with client_errors():
        token = read_api_token(api_token, api_token_file)
        found = asyncio.run(judge_links(cj_url, batch_id, api_token=token))
    _print(found, as_json)
