"""Human judges beside the AI: what a judge's page shows, their verdicts and skips, and the
organiser's invitations and links.

A verdict reaches the batch as an LLM verdict does: it is staged in this service's outbox as an
`LLMComparisonResultV1` on the comparison-callback topic (keyed by the batch, under the pair's
current request id, `judge_kind` human), and the callback consumer records it. The batch state
machine, de-duplication, the monitor and the outbox therefore treat both kinds of judge alike;
this module only guards who may answer which pair, and when.

Every use case runs in the caller's unit of work; a refusal raises a `JudgeRefusal` (or a batch
error for the organiser) before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from uuid import UUID

from cj_assessment_service import metrics
from cj_assessment_service.application.ports import (
    BatchRecord,
    HumanPairRecord,
    JudgeProgress,
    UnitOfWork,
)
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.domain.batch import PairStatus
from cj_assessment_service.domain.errors import (
    BatchAlreadyFinished,
    BatchNotFound,
    HumanJudgingConflict,
    HumanJudgingNotConfigured,
    InvalidDeadline,
    JudgeNotInvited,
    JudgeRefusal,
    PairAlreadyJudged,
    PairNotAssigned,
    PairReleased,
)
from cj_assessment_service.domain.human_pairs import deadline_problem
from cj_assessment_service.domain.judge_links import (
    InvalidJudgeLink,
    JudgeLinkClaims,
    sign_judge_link,
    verify_judge_link,
)
from common_core.events.cj import HumanJudge, HumanJudgingRequest
from common_core.events.envelope import new_event
from common_core.events.llm import ComparisonWinner, JudgeKind, LLMComparisonResultV1

HUMAN_PROVIDER = "human"
HUMAN_MODEL = "judging-page"
# A human's choice is a hard verdict: the middle of the 1-5 confidence scale, no probability.
HUMAN_CONFIDENCE = 3.0

_OUTCOMES: dict[type[JudgeRefusal], str] = {
    JudgeNotInvited: "bad_link",
    PairNotAssigned: "not_assigned",
    PairAlreadyJudged: "duplicate",
    PairReleased: "released",
}


class PageState(StrEnum):
    """What a judge's page shows."""

    PAIR = "pair"
    """The next pair to judge."""
    DONE = "done"
    """Every pair assigned to the judge is judged (or released)."""
    WAITING = "waiting"
    """No pair has been assigned to the judge yet (the planner assigns them at its next step)."""
    BATCH_FINISHED = "batch_finished"
    DEADLINE_PASSED = "deadline_passed"


@dataclass(frozen=True, slots=True)
class PairToJudge:
    """A pair as the judge sees it: its id, and the two texts in the order shown (no essay ids:
    the judge must not learn them)."""

    pair_id: UUID
    essay_a_text: str
    essay_b_text: str


@dataclass(frozen=True, slots=True)
class JudgePage:
    """A judge's page: who, the batch's prompt, their progress and, in state PAIR, the pair."""

    state: PageState
    display_name: str
    prompt: str
    progress: JudgeProgress
    pair: PairToJudge | None = None


@dataclass(frozen=True, slots=True)
class JudgeLink:
    """An invited judge as the organiser sees them: the private link and the progress."""

    judge_id: str
    display_name: str
    link: str
    expires_at: datetime
    progress: JudgeProgress


def _now() -> datetime:
    return datetime.now(UTC)


class HumanJudgingUseCases:
    """The judging page's and the organiser's use cases, configured by the service settings."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _now) -> None:
        self._settings = settings
        self._clock = clock

    @property
    def configured(self) -> bool:
        """True when links can be signed and verified (JUDGE_LINK_SECRET is set)."""
        return self._settings.judge_link_secret is not None

    def _secret(self) -> bytes:
        secret = self._settings.judge_link_secret
        if secret is None:
            raise HumanJudgingNotConfigured("human judging is not configured")
        return secret.get_secret_value().encode("utf-8")

    def verify(self, token: str) -> JudgeLinkClaims:
        """The claims of a judge's link, or `InvalidJudgeLink` (malformed, bad signature,
        expired); `HumanJudgingNotConfigured` without a secret."""
        try:
            return verify_judge_link(token, self._secret(), self._clock())
        except InvalidJudgeLink:
            metrics.HUMAN_VERDICTS.labels(outcome="bad_link").inc()
            raise

    # The judge's page ------------------------------------------------------------------------

    async def next_for_judge(self, uow: UnitOfWork, claims: JudgeLinkClaims) -> JudgePage:
        """The judge's page: the next pair with both texts and the prompt, or why there is none."""
        batch, judge = await self._invited(uow, claims)
        progress = (await uow.human_judging.progress(batch.id)).get(
            judge.judge_id, JudgeProgress(judge.judge_id)
        )
        page = JudgePage(
            PageState.DONE,
            judge.display_name,
            batch.request_settings.essay_instructions,
            progress,
        )
        if batch.state.is_terminal:
            return _with_state(page, PageState.BATCH_FINISHED)
        if _deadline(batch) <= self._clock():
            return _with_state(page, PageState.DEADLINE_PASSED)
        pair = await uow.human_judging.next_pair(batch.id, judge.judge_id)
        if pair is None:
            return _with_state(page, PageState.WAITING if progress.assigned == 0 else page.state)
        texts = {
            e.position: e.text_content
            for e in await uow.essays.get(batch.id, {pair.essay_a, pair.essay_b})
        }
        shown = PairToJudge(pair.id, texts[pair.essay_a], texts[pair.essay_b])
        return JudgePage(PageState.PAIR, judge.display_name, page.prompt, progress, shown)

    async def submit(
        self,
        uow: UnitOfWork,
        claims: JudgeLinkClaims,
        pair_id: UUID,
        winner: ComparisonWinner,
        *,
        latency_ms: int = 0,
    ) -> None:
        """Take the judge's verdict on one of their pairs: stage it on the callback topic as the
        LLM provider would, and mark the pair submitted (a second submit is refused)."""
        batch, pair = await self._open_pair(uow, claims, pair_id)
        now = self._clock()
        await uow.human_judging.mark_submitted(pair.id, now)
        result = LLMComparisonResultV1(
            request_id=pair.request_id,
            request_metadata={"batch_id": str(batch.id), "pair_id": str(pair.id)},
            provider=HUMAN_PROVIDER,
            model=HUMAN_MODEL,
            latency_ms=max(0, latency_ms),
            winner=winner,
            confidence=HUMAN_CONFIDENCE,
            judge_kind=JudgeKind.HUMAN,
            judge_id=claims.judge_id,
        )
        topic = self._settings.callback_topic
        envelope = new_event(
            topic, result, source_service=SERVICE_NAME, correlation_id=batch.correlation_id
        )
        uow.stage_event(topic, envelope, key=str(batch.id))
        uow.after_commit(lambda: metrics.HUMAN_VERDICTS.labels(outcome="accepted").inc())

    async def skip(self, uow: UnitOfWork, claims: JudgeLinkClaims, pair_id: UUID) -> None:
        """Move one of the judge's open pairs to the end of their queue."""
        _, pair = await self._open_pair(uow, claims, pair_id)
        await uow.human_judging.mark_skipped(pair.id, self._clock())
        uow.after_commit(lambda: metrics.HUMAN_VERDICTS.labels(outcome="skipped").inc())

    async def _invited(
        self, uow: UnitOfWork, claims: JudgeLinkClaims
    ) -> tuple[BatchRecord, HumanJudge]:
        batch = await uow.batches.get(claims.batch_id)
        invited = batch.human_judging.judges if batch and batch.human_judging else []
        judge = next((j for j in invited if j.judge_id == claims.judge_id), None)
        if batch is None or judge is None:
            raise JudgeNotInvited("this link names no invited judge of a batch")
        return batch, judge

    async def _open_pair(
        self, uow: UnitOfWork, claims: JudgeLinkClaims, pair_id: UUID
    ) -> tuple[BatchRecord, HumanPairRecord]:
        """The batch and the locked pair, if the judge may still answer it; else the refusal."""
        try:
            batch, _ = await self._invited(uow, claims)
            pair = await uow.human_judging.lock_pair(pair_id)
            if pair is None or pair.batch_id != batch.id or pair.judge_id != claims.judge_id:
                raise PairNotAssigned("pair not assigned to this judge")
            if pair.judged:
                raise PairAlreadyJudged("already judged")
            if pair.status == PairStatus.RELEASED or batch.state.is_terminal:
                raise PairReleased("this comparison is closed: released or the batch finished")
            if _deadline(batch) <= self._clock():
                raise PairReleased("the deadline for human judging has passed")
        except JudgeRefusal as refusal:
            outcome = _OUTCOMES.get(type(refusal), "not_assigned")
            metrics.HUMAN_VERDICTS.labels(outcome=outcome).inc()
            raise
        return batch, pair

    # The organiser ---------------------------------------------------------------------------

    async def start_human_judging(
        self, uow: UnitOfWork, batch_id: UUID, request: HumanJudgingRequest
    ) -> list[JudgeLink]:
        """Add human judges to a running batch; their links (the planner assigns their pairs at
        its next step)."""
        self._secret()
        batch = await uow.batches.lock(batch_id)
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        if batch.state.is_terminal:
            raise BatchAlreadyFinished(f"batch {batch_id} is {batch.state.value}")
        if batch.human_judging is not None:
            raise HumanJudgingConflict(f"batch {batch_id} already has human judging")
        problem = deadline_problem(
            request.deadline, self._clock(), self._settings.human_deadline_max_days
        )
        if problem is not None:
            raise InvalidDeadline(f"the deadline {problem}")
        await uow.human_judging.start(batch_id, request)
        return self._links(batch_id, request, {})

    async def judges(self, uow: UnitOfWork, batch_id: UUID) -> list[JudgeLink]:
        """A batch's human judges with their links and progress (none without human judging)."""
        self._secret()
        batch = await uow.batches.get(batch_id)
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        if batch.human_judging is None:
            return []
        progress = await uow.human_judging.progress(batch_id)
        return self._links(batch_id, batch.human_judging, progress, _deadline(batch))

    def _links(
        self,
        batch_id: UUID,
        request: HumanJudgingRequest,
        progress: dict[str, JudgeProgress],
        deadline: datetime | None = None,
    ) -> list[JudgeLink]:
        expires_at = deadline or request.deadline
        secret, base = self._secret(), self._settings.judge_links_base_url
        links = []
        for judge in request.judges:
            token = sign_judge_link(JudgeLinkClaims(batch_id, judge.judge_id, expires_at), secret)
            links.append(
                JudgeLink(
                    judge.judge_id,
                    judge.display_name,
                    f"{base}/judge/{token}",
                    expires_at,
                    progress.get(judge.judge_id, JudgeProgress(judge.judge_id)),
                )
            )
        return links


def _deadline(batch: BatchRecord) -> datetime:
    """The batch's human deadline (the column, else the request's)."""
    if batch.human_deadline is not None:
        return batch.human_deadline
    assert batch.human_judging is not None  # only batches with human judging get here
    return batch.human_judging.deadline


def _with_state(page: JudgePage, state: PageState) -> JudgePage:
    return JudgePage(state, page.display_name, page.prompt, page.progress)
