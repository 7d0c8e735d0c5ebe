"""`huleedu erase`: an operator erases one learner's answer texts (submission service) or one
batch's essay texts (CJ service) and sees what was removed. Nothing here prints a text."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from huleedu_cli.api_token import ApiTokenFileOption, ApiTokenOption, read_api_token
from huleedu_cli.cli_options import JsonOption, client_errors
from huleedu_cli.erasure_client import (
    DEFAULT_SUBMISSION_URL,
    Erasure,
    erase_batch,
    erase_learner,
)
from huleedu_cli.errors import InputError
from huleedu_cli.status_client import DEFAULT_CJ_URL

erase_app = typer.Typer(
    help="Erase learner data (operators; needs a token with the erase scope).",
    no_args_is_help=True,
)


def render_erasure(console: Console, what: str, erasure: Erasure) -> None:
    """What an erasure removed, one line per kind, and its audit id."""
    if erasure.already_erased:
        console.print(f"{what}: already erased, nothing left to remove", markup=False)
    elif not any(erasure.erased.values()):
        console.print(f"{what}: nothing to remove", markup=False)
    else:
        console.print(f"{what}: erased", markup=False)
    width = max((len(kind) for kind in erasure.erased), default=0)
    for kind, count in sorted(erasure.erased.items()):
        console.print(f"  {kind:<{width}}  {count}", markup=False)
    console.print(f"audit record: {erasure.audit_id}", markup=False)


@erase_app.command("learner")
def learner(
    *,
    user_id: Annotated[
        str | None, typer.Option(help="The learner's user id (the `sub` of their tokens).")
    ] = None,
    anonymous_token: Annotated[
        str | None, typer.Option(help="The anonymous learner's token (a UUID).")
    ] = None,
    submission_url: Annotated[
        str, typer.Option(envvar="HULEEDU_SUBMISSION_URL", help="Submission service base URL.")
    ] = DEFAULT_SUBMISSION_URL,
    as_json: JsonOption = False,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
) -> None:
    """Erase one learner's answer texts and every copy of them (scope submission:erase)."""
    with client_errors():
        if (user_id is None) == (anonymous_token is None):
            raise InputError("give exactly one of --user-id or --anonymous-token")
        token = read_api_token(api_token, api_token_file)
        erasure = asyncio.run(
            erase_learner(
                submission_url,
                user_id=user_id,
                anonymous_token=anonymous_token,
                api_token=token,
            )
        )
    if as_json:
        print(json.dumps(erasure.model_dump(mode="json")))
        return
    subject = "user id" if erasure.subject == "user_id" else "anonymous token"
    render_erasure(Console(highlight=False), f"learner ({subject})", erasure)


@erase_app.command("batch")
def batch(
    batch_id: Annotated[str, typer.Argument(help="The CJ batch id (see `huleedu cj status`).")],
    cj_url: Annotated[str, typer.Option(help="CJ service base URL.")] = DEFAULT_CJ_URL,
    as_json: JsonOption = False,
    api_token: ApiTokenOption = None,
    api_token_file: ApiTokenFileOption = None,
) -> None:
    """Erase one CJ batch's essay texts (scope cj:erase)."""
    with client_errors():
        token = read_api_token(api_token, api_token_file)
        erasure = asyncio.run(erase_batch(cj_url, batch_id, api_token=token))
    if as_json:
        print(json.dumps(erasure.model_dump(mode="json")))
        return
    render_erasure(Console(highlight=False), f"batch {erasure.batch_id}", erasure)
