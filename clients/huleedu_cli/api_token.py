"""The bearer token the CLI sends to the services' HTTP APIs: from `--api-token` /
HULEEDU_API_TOKEN, or read from `--api-token-file` / HULEEDU_API_TOKEN_FILE (a file a secret
store mounts; it keeps the token out of the process list and the shell history)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
        text = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read the API token file {token_file}: {exc.strerror}") from exc
    if not text:
        raise InputError(f"the API token file {token_file} is empty")
    return text


def bearer_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer <token>`, or nothing without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}
