"""The human judges' page: server-rendered HTML behind each judge's signed link.

Not under `/api`: no bearer token, the link's token (in the path) is the credential. It is never
logged (the request logs name the route template, `/judge/<token>`), never sent on as a Referer
(`Referrer-Policy: no-referrer`), and pages are not cached (`Cache-Control: no-store`). Every
answer carries a strict Content-Security-Policy: the page's only script and style are served by
this blueprint. Without JavaScript the two choose buttons submit the verdict directly; with it,
the keyboard (← A, → B) asks for a confirmation first (Enter or Confirm; Escape cancels).

A POST that changes something answers 303 back to the page (POST-redirect-GET); a refused one
answers the error page with its status (403 bad link, 404 not this judge's pair, 409 already
judged, 410 released or batch finished) and changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from uuid import UUID

from dishka import FromDishka
from quart import Blueprint, Response, render_template, request, url_for
from quart_dishka import inject
from quart_schema import hide
from werkzeug.exceptions import NotFound

from cj_assessment_service.application.human_judging import HumanJudgingUseCases, PageState
from cj_assessment_service.application.ports import Transactions
from cj_assessment_service.domain.errors import (
    HumanJudgingNotConfigured,
    JudgeNotInvited,
    JudgeRefusal,
    PairAlreadyJudged,
    PairNotAssigned,
    PairReleased,
)
from cj_assessment_service.domain.judge_links import InvalidJudgeLink, LinkProblem
from cj_assessment_service.entrypoints.judging_markup import prompt_html
from common_core.events.llm import ComparisonWinner

# Longest time a pair can have been shown that is taken as the verdict's latency (a day).
MAX_SHOWN_MS = 86_400_000

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

_WINNERS = {"A": ComparisonWinner.ESSAY_A, "B": ComparisonWinner.ESSAY_B}
_REFUSAL_STATUS: dict[type[JudgeRefusal], int] = {
    PairNotAssigned: 404,
    PairAlreadyJudged: 409,
    PairReleased: 410,
    JudgeNotInvited: 403,
}

judging = Blueprint("judging", __name__, template_folder="judging_templates")

# The page's only script, style and icon (served here, not by a static folder, so that the route
# stays out of the API document and serves nothing else).
_ASSETS = Path(__file__).resolve().parent / "judging_static"
_ASSET_TYPES = {
    "judging.css": "text/css; charset=utf-8",
    "judging.js": "text/javascript; charset=utf-8",
    "judging.svg": "image/svg+xml",
}


@judging.after_request
async def protect_page(response: Response) -> Response:
    """No caching, no Referer, only this blueprint's script and style."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@judging.get("/judge-static/<name>")
@hide
async def page_asset(name: str) -> Response:
    """The judging page's script, style sheet or icon."""
    content_type = _ASSET_TYPES.get(name)
    if content_type is None:
        raise NotFound()
    return Response(_asset(name), content_type=content_type)


@functools.cache
def _asset(name: str) -> bytes:
    return (_ASSETS / name).read_bytes()


@judging.get("/judge/<token>")
@hide
@inject
async def judge_page(
    token: str,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> str:
    """The judge's next pair, or the page saying why there is none."""
    claims = use_cases.verify(token)
    async with transactions() as uow:
        page = await use_cases.next_for_judge(uow, claims)
    judged, assigned = page.progress.judged, page.progress.assigned
    return await render_template(
        "judging/page.html",
        page=page,
        prompt=prompt_html(page.prompt) if page.prompt else None,
        states=PageState,
        judged=judged,
        assigned=assigned,
        verdict_url=url_for("judging.submit_verdict", token=token),
        skip_url=url_for("judging.skip_pair", token=token),
    )


@judging.post("/judge/<token>/verdicts")
@hide
@inject
async def submit_verdict(
    token: str,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> Response:
    """Take the judge's choice (form: `pair_id`, `winner` A or B, `shown_ms` optional)."""
    claims = use_cases.verify(token)
    form = await request.form
    winner = _WINNERS.get(form.get("winner", ""))
    if winner is None:
        return await _error_page(400, "Choose Essay A or Essay B.", token)
    async with transactions() as uow:
        await use_cases.submit(
            uow, claims, _pair_id(form.get("pair_id")), winner, latency_ms=_shown_ms(form)
        )
    return _back_to_page(token)


@judging.post("/judge/<token>/skips")
@hide
@inject
async def skip_pair(
    token: str,
    transactions: FromDishka[Transactions],
    use_cases: FromDishka[HumanJudgingUseCases],
) -> Response:
    """Move a pair to the end of the judge's queue (form: `pair_id`)."""
    claims = use_cases.verify(token)
    form = await request.form
    async with transactions() as uow:
        await use_cases.skip(uow, claims, _pair_id(form.get("pair_id")))
    return _back_to_page(token)


def _back_to_page(token: str) -> Response:
    """303 to the judge's page (POST-redirect-GET: reloading it does not post again)."""
    return Response(
        "", status=303, headers={"Location": url_for("judging.judge_page", token=token)}
    )


def _pair_id(raw: str | None) -> UUID:
    """The form's pair id; one that is not a UUID is no pair of this judge."""
    try:
        return UUID(raw or "")
    except ValueError:
        raise PairNotAssigned("pair not assigned to this judge") from None


def _shown_ms(form: Mapping[str, str]) -> int:
    """How long the pair was shown before the choice, if the page's script said (else 0)."""
    try:
        return min(max(int(form.get("shown_ms", "0")), 0), MAX_SHOWN_MS)
    except ValueError:
        return 0


async def _error_page(status: int, message: str, token: str | None = None) -> Response:
    back = url_for("judging.judge_page", token=token) if token is not None else None
    body = await render_template("judging/error.html", message=message, back=back)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


@judging.errorhandler(InvalidJudgeLink)
async def bad_link(exc: InvalidJudgeLink) -> Response:
    """403: the link has expired, or is not a valid link (tampered, truncated, another key)."""
    if exc.reason == LinkProblem.EXPIRED:
        return await _error_page(403, "This judging link has expired.")
    return await _error_page(403, "This judging link is not valid. Check that it was copied whole.")


@judging.errorhandler(JudgeRefusal)
async def refused(exc: JudgeRefusal) -> Response:
    """The refusal's status, with a way back to the judge's page."""
    token = (request.view_args or {}).get("token")
    status = _REFUSAL_STATUS.get(type(exc), 400)
    message = {
        404: "This comparison is not assigned to you.",
        409: "You have already judged this comparison.",
        410: "This comparison is closed: its deadline has passed or the batch has finished.",
        403: "This judging link is not valid for any batch.",
    }.get(status, exc.message)
    return await _error_page(status, message, token if status != 403 else None)


@judging.errorhandler(HumanJudgingNotConfigured)
async def not_configured(_exc: HumanJudgingNotConfigured) -> Response:
    """503: this instance has no JUDGE_LINK_SECRET."""
    return await _error_page(503, "Human judging is not configured.")
