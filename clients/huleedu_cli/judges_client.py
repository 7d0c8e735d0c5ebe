"""The CJ service's organiser API for human judges, as the client sees it: invite judges to a
running batch, and read their private links and progress."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from huleedu_cli.api_token import TOKEN_FILE_VARIABLE, TOKEN_VARIABLE, bearer_headers
from huleedu_cli.errors import InputError, JudgesRequestError
from huleedu_cli.service_errors import error_reason

_RELATIVE = re.compile(r"^\+(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


class JudgeLink(BaseModel):
    """One invited judge: the private link to their page, until when it works, and progress."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    judge_id: str
    display_name: str
    link: str
    expires_at: datetime
    assigned: int
    judged: int
    skipped: int
    remaining: int


class BatchJudges(BaseModel):
    """`GET /api/v1/batches/<batch_id>/judges` (and the answer of an invitation)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    batch_id: str
    judges: list[JudgeLink]


def parse_judge(text: str) -> dict[str, str]:
    """`ID=Display Name` as the API's judge object."""
    judge_id, sep, name = text.partition("=")
    if not sep or not judge_id.strip() or not name.strip():
        raise InputError(f"--judge {text!r}: expected ID=Display Name")
    return {"judge_id": judge_id.strip(), "display_name": name.strip()}


def parse_deadline(text: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 time with its offset, or `+30m` / `+2h` / `+1d` from now."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return (now or datetime.now(UTC)) + timedelta(**{_UNITS[unit]: amount})
    try:
        deadline = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--deadline {text!r}: expected an ISO time or +30m, +2h, +1d") from None
    if deadline.tzinfo is None:
        raise InputError(f"--deadline {text!r}: give the time zone (e.g. +00:00 or Z)")
    return deadline


async def invite_judges(
    base_url: str,
    batch_id: str,
    *,
    judges: list[dict[str, str]],
    share: float,
    deadline: datetime,
    api_token: str | None = None,
    timeout: float = 30.0,
) -> BatchJudges:
    """Invite human judges to a running batch (scope cj:write); their links."""
    body = {"judges": judges, "share": share, "deadline": deadline.isoformat()}
    path = f"/api/v1/batches/{batch_id}/human-judging"
    return await _call(base_url, "POST", path, body, api_token=api_token, timeout=timeout)


async def judge_links(
    base_url: str, batch_id: str, *, api_token: str | None = None, timeout: float = 30.0
) -> BatchJudges:
    """A batch's judges with their links and progress (scope cj:read)."""
    path = f"/api/v1/batches/{batch_id}/judges"
    return await _call(base_url, "GET", path, None, api_token=api_token, timeout=timeout)


async def _call(
    base_url: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    api_token: str | None,
    timeout: float,
) -> BatchJudges:
    scope = "cj:read" if method == "GET" else "cj:write"
    base = base_url.rstrip("/")
    async with httpx.AsyncClient(
        base_url=base, timeout=timeout, headers=bearer_headers(api_token)
    ) as http:
        try:
            response = await http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise JudgesRequestError(
                f"CJ service at {base} unreachable: {type(exc).__name__}"
            ) from exc
    if response.status_code in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
        raise JudgesRequestError(
            f"CJ service at {base} refused the credentials ({response.status_code}"
            f"{error_reason(response)}): set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE} to a token "
            f"with the scope {scope}"
        )
    if response.is_error:
        raise JudgesRequestError(
            f"CJ service answered {response.status_code} for {path}{error_reason(response)}"
        )
    try:
        return BatchJudges.model_validate(response.json())
    except (ValueError, ValidationError) as exc:
        raise JudgesRequestError(f"unexpected answer from {base} for {path}") from exc
