"""The bearer token the CLI sends to the services' HTTP APIs: from `--api-token` /
HULEEDU_API_TOKEN, or read from `--api-token-file` / HULEEDU_API_TOKEN_FILE (a file a secret
store mounts; it keeps the token out of the process list and the shell history)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common_core.runtime.secret_files import read_secret_file
from huleedu_cli.errors import InputError

TOKEN_VARIABLE = "HULEEDU_API_TOKEN"  # noqa: S105 - a variable's name
TOKEN_FILE_VARIABLE = "HULEEDU_API_TOKEN_FILE"  # noqa: S105 - a variable's name

ApiTokenOption = Annotated[
    str | None,
    typer.Option(
        envvar=TOKEN_VARIABLE,
        show_default=False,
        help="Bearer token for the CJ API (prefer the variable or --api-token-file).",
    ),
]
ApiTokenFileOption = Annotated[
    Path | None,
    typer.Option(envvar=TOKEN_FILE_VARIABLE, help="Read the CJ API's bearer token here."),
]


def read_api_token(token: str | None, token_file: Path | None) -> str | None:
    """The token to send (None: send none, for a stack without API authentication)."""
    if token and token_file is not None:
        raise InputError(f"give {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE}, not both")
    if token:
        return token.strip()
    if token_file is None:
        return None
    try:
        return read_secret_file(token_file, TOKEN_FILE_VARIABLE).strip()
    except ValueError as exc:
        raise InputError(f"cannot read the API token file: {exc}") from None


def bearer_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer <token>`, or nothing without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}
