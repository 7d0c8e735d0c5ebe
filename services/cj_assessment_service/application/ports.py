"""What the application layer needs from storage: records, the stores per area and the unit of
work that carries them.

The use cases in this package own this interface; `adapters.postgres` implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.batch import BatchState, PairStatus
from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.scoring import ScoredEssay
from common_core.events.cj import CJCompletionReason, EssayRanking, HumanJudgingRequest
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMConfig


@dataclass(frozen=True, slots=True)
class RequestSettings:
    """What a batch keeps of its request: for its comparison requests, and its stop rule's target
    (the request's `target_reliability`, else the service default at intake).

    Stored as the JSON object of `to_json` in `cj_batches.request_settings`; `from_json` reads
    it back, a missing or null field taking the request's default (rows of any age load)."""

    language: str = "en"
    course_code: str | None = None
    essay_instructions: str = ""
    judge_rubric: str | None = None
    llm_config: LLMConfig = field(default_factory=LLMConfig)
    max_comparisons: int | None = None
    target_reliability: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored JSON object: every field, the LLM config as its JSON."""
        return {**asdict(self), "llm_config": self.llm_config.model_dump(mode="json")}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> RequestSettings:
        """The settings of a stored JSON object."""
        return cls(
            language=stored.get("language") or "en",
            course_code=stored.get("course_code"),
            essay_instructions=stored.get("essay_instructions") or "",
            judge_rubric=stored.get("judge_rubric"),
            llm_config=LLMConfig.model_validate(stored.get("llm_config") or {}),
            max_comparisons=stored.get("max_comparisons"),
            target_reliability=stored.get("target_reliability"),
        )


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """A CJ batch row."""

    id: UUID
    entity_ref: str
    correlation_id: UUID
    request_event_id: UUID
    state: BatchState
    essay_count: int
    budget: int
    request_settings: RequestSettings
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime
    # A new batch has planned, answered and decided nothing yet.
    planned: int = 0
    completed: int = 0
    failed: int = 0
    waves: int = 0
    partial_scoring_triggered: bool = False
    threshold_reached_at: datetime | None = None
    completion_reason: str | None = None
    previous_scores: list[float] | None = None
    result: dict[str, Any] | None = None
    error_detail: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finished_at: datetime | None = None
    # What answers cost (docs/contracts.md resource_usage): cache tokens, the summed estimated cost,
    # answers that used tokens without a price, and who judged ([{provider, model,
    # prompt_version, comparisons}]).
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    estimated_cost_usd: float = 0.0
    unpriced_answers: int = 0
    judges: list[dict[str, Any]] = field(default_factory=list)
    # Hedged calls made for the batch's straggler tail (README "Hedged requests").
    hedged: int = 0
    # When its essay texts were blanked (retention purge or erasure); None while held.
    texts_purged_at: datetime | None = None
    # The uploaded essay set its essays were read from (None: inline essays).
    essay_set_id: UUID | None = None
    # Human judges beside the AI (None without): who, their share and deadline; comparisons
    # given to them (counted in `planned` until released), judged, and released at the deadline.
    human_judging: HumanJudgingRequest | None = None
    human_deadline: datetime | None = None
    human_planned: int = 0
    human_answered: int = 0
    human_released: int = 0

    @property
    def answered(self) -> int:
        """Comparisons answered so far (verdicts and final errors)."""
        return self.completed + self.failed

    @property
    def pending(self) -> int:
        """Comparisons requested and not answered yet (the AI's and the human judges')."""
        return self.planned - self.answered

    @property
    def human_pending(self) -> int:
        """Comparisons given to human judges and neither judged nor released yet."""
        return self.human_planned - self.human_answered - self.human_released

    @property
    def human_in_plan(self) -> int:
        """Comparisons given to human judges and not released (counted in `planned`)."""
        return self.human_planned - self.human_released

    @property
    def comparison_limit(self) -> int:
        """Comparisons the batch may plan: the AI's budget plus the people's pairs, which come
        on top of it (the budget bounds what the AI is asked; a person's verdict costs no
        tokens)."""
        return self.budget + self.human_in_plan

    @property
    def ai_pending(self) -> int:
        """Comparisons asked of the AI and not answered yet (what its pacing keeps in flight)."""
        return self.pending - self.human_pending


@dataclass(frozen=True, slots=True)
class EssayRecord:
    """An essay of a batch; `position` is its index in the Bradley-Terry fit."""

    position: int
    essay_id: str
    text_content: str
    anchor_grade: str | None = None


@dataclass(frozen=True, slots=True)
class PairRecord:
    """A comparison pair of a batch."""

    id: UUID
    batch_id: UUID
    wave: int
    essay_a: int
    essay_b: int
    request_id: UUID
    status: PairStatus
    winner: str | None
    attempts: int
    requested_at: datetime
    # The judge's probability that essay A is better, where its verdict carried one.
    probability_a_better: float | None = None
    # 'human' for a pair assigned to the person `judge_id`; None for the AI's pairs.
    judge_kind: str | None = None
    judge_id: str | None = None


class Verdict(IntEnum):
    """A pair's outcome as scoring and planning see it (a column of `PairOutcomes`)."""

    PENDING = 0
    A_WON = 1
    B_WON = 2
    FAILED = 3
    RELEASED = 4
    """Given to a person who had not judged it by the deadline (no verdict)."""


@dataclass(frozen=True, slots=True)
class PairOutcomes:
    """Every pair of a batch as columns, in the order they were planned: the essay shown first,
    the one shown second, the verdict (a `Verdict` value) and, optionally, the judge's
    probability that A is better (NaN where the verdict had none). Columns, not rows: a batch of
    10,000 essays has 100,000 pairs, read at every top-up."""

    essay_a: npt.NDArray[np.int64]
    essay_b: npt.NDArray[np.int64]
    verdict: npt.NDArray[np.int8]
    probability_a: npt.NDArray[np.float64] | None = None
    # Read for batches with human judges only: which pairs are people's, and who judged each
    # (the person, or the AI's `provider:model`; "" where unknown).
    human: npt.NDArray[np.bool_] | None = None
    judge: npt.NDArray[np.object_] | None = None

    def __len__(self) -> int:
        return int(self.essay_a.shape[0])

    def decided(self) -> npt.NDArray[np.bool_]:
        """Which pairs have a verdict (in the order of `answered`'s comparisons)."""
        return np.asarray(
            (self.verdict == Verdict.A_WON) | (self.verdict == Verdict.B_WON), dtype=np.bool_
        )

    def answered_judges(self) -> tuple[npt.NDArray[np.bool_], list[str]] | None:
        """For the verdicts of `answered`, in its order: which are human and who gave each;
        None when the judges were not read."""
        if self.human is None or self.judge is None:
            return None
        decided = self.decided()
        return self.human[decided], [str(j) for j in self.judge[decided]]

    def answered(self, n_essays: int) -> Comparisons:
        """The verdicts, for a fit of `n_essays` essays."""
        won = self.verdict == Verdict.A_WON
        decided = won | (self.verdict == Verdict.B_WON)
        probability = None
        if self.probability_a is not None and not np.isnan(self.probability_a[decided]).all():
            probability = self.probability_a[decided]
        return Comparisons(
            n_essays, self.essay_a[decided], self.essay_b[decided], won[decided], probability
        )

    def with_pending(
        self, pairs: Sequence[tuple[int, int]], *, human: bool, judges: Sequence[str]
    ) -> PairOutcomes:
        """These columns with newly planned (pending) pairs appended, given to `judges`."""
        count = len(pairs)
        first = np.fromiter((a for a, _ in pairs), dtype=np.int64, count=count)
        second = np.fromiter((b for _, b in pairs), dtype=np.int64, count=count)
        size = len(self)
        return PairOutcomes(
            np.concatenate([self.essay_a, first]),
            np.concatenate([self.essay_b, second]),
            np.concatenate([self.verdict, np.full(count, Verdict.PENDING, dtype=np.int8)]),
            None
            if self.probability_a is None
            else np.concatenate([self.probability_a, np.full(count, np.nan)]),
            human=np.concatenate(
                [
                    self.human if self.human is not None else np.zeros(size, dtype=np.bool_),
                    np.full(count, human, dtype=np.bool_),
                ]
            ),
            judge=np.concatenate(
                [
                    self.judge if self.judge is not None else np.full(size, "", dtype=np.object_),
                    np.asarray(list(judges), dtype=np.object_),
                ]
            ),
        )

    def asked(self) -> list[tuple[int, int]]:
        """Every pair planned so far, answered or not, as (essay A, essay B)."""
        return list(zip(self.essay_a.tolist(), self.essay_b.tolist(), strict=True))


@dataclass(frozen=True, slots=True)
class NewPair:
    """A pair to insert: the ordered essay positions and the request id it is asked under."""

    id: UUID
    essay_a: int
    essay_b: int
    request_id: UUID
    # A pair for a person: 'human' and who (never asked of the AI).
    judge_kind: str | None = None
    judge_id: str | None = None


@dataclass(frozen=True, slots=True)
class PairAnswer:
    """The outcome to store for a pending pair."""

    pair_id: UUID
    status: PairStatus
    winner: str | None
    error_code: str | None
    # The judge's probability that essay A is better (`probability_essay_a_better`), if given.
    probability_a_better: float | None = None
    # Who answered an AI pair (`provider:model`); None keeps the stored judge (a person's pair).
    judge_id: str | None = None


@dataclass(frozen=True, slots=True)
class PairReissue:
    """A pair asked again after a retryable error, under a new request id."""

    pair_id: UUID
    request_id: UUID


@dataclass(frozen=True, slots=True)
class HedgeCall:
    """One request id of a hedged pair: the copy it was asked under when hedged, or the hedge."""

    request_id: UUID
    pair_id: UUID
    hedge: bool
    answered: bool


@dataclass(frozen=True, slots=True)
class NewHedge:
    """A straggler asked a second time: its pair, the request id it is outstanding under, and
    the hedge's new request id."""

    pair_id: UUID
    outstanding_request_id: UUID
    hedge_request_id: UUID


@dataclass(frozen=True, slots=True)
class StoredEssaySet:
    """An uploaded essay set as intake reads it: its digest and its essays in upload order."""

    id: UUID
    content_sha256: str
    expires_at: datetime
    essays: list[EssayRecord]


class BatchStore(Protocol):
    """Batches: intake, reads, locks, and the typed changes of their lives."""

    async def get(self, batch_id: UUID) -> BatchRecord | None:
        """A batch, without locking."""
        ...

    async def newest(self, entity_ref: str) -> BatchRecord | None:
        """The most recently created batch of an upstream ref."""
        ...

    async def claim_request(self, event_id: UUID) -> bool:
        """Record a request event as handled; False if it already was."""
        ...

    async def live_id(self, entity_ref: str) -> UUID | None:
        """The non-terminal batch for an upstream ref, if any."""
        ...

    async def add(self, batch: BatchRecord) -> None:
        """Insert a batch (its essays go to `EssayStore.add`)."""
        ...

    async def lock(self, batch_id: UUID) -> BatchRecord | None:
        """A batch, locked for this transaction."""
        ...

    async def lock_for_requests(self, request_ids: Sequence[UUID]) -> dict[UUID, BatchRecord]:
        """The batches owning pairs with these request ids, locked in id order (so concurrent
        lockers cannot deadlock)."""
        ...

    async def lock_stale(
        self,
        *,
        inactive_since: datetime,
        batch_mode_inactive_since: datetime,
        threshold_since: datetime,
        limit: int,
    ) -> list[BatchRecord]:
        """Live batches idle since `inactive_since` (`batch_mode_inactive_since` for batches
        asked through a provider's batch API) or past their partial-scoring grace, locked with
        SKIP LOCKED so several monitors share the work."""
        ...

    async def lock_hedge_candidates(self, *, max_share: float, limit: int) -> list[BatchRecord]:
        """Batches waiting only on their tail (whole budget planned, answers outstanding) with
        hedges left in `max_share` of their budget, locked with SKIP LOCKED."""
        ...

    async def count_live(self) -> tuple[dict[str, int], int]:
        """Batches per state, and comparisons requested and not answered over live batches."""
        ...

    async def record_wave(
        self, batch_id: UUID, *, state: BatchState, planned: int, waves: int
    ) -> None:
        """Store a batch's state, pairs planned and planning steps after it requested pairs."""
        ...

    async def record_answers(self, batch: BatchRecord) -> None:
        """Store the answer counters, token usage, cost, judges, last activity and threshold
        time of `batch` (the batch with its new answers counted)."""
        ...

    async def set_hedged(self, batch_id: UUID, hedged: int) -> None:
        """Store how many hedged calls a batch has made."""
        ...

    async def record_human_plan(self, batch_id: UUID, *, planned: int, human_planned: int) -> None:
        """Store a batch's pairs planned and pairs given to human judges after planning them."""
        ...

    async def lock_human_deadline_due(self, now: datetime, limit: int) -> list[BatchRecord]:
        """Live batches past their human judges' deadline with pairs still given to people,
        locked with SKIP LOCKED."""
        ...

    async def record_release(self, batch: BatchRecord) -> None:
        """Store the planned count, released human pairs and last activity of `batch` after
        its people's unjudged pairs were released."""
        ...

    async def mark_completed(
        self,
        batch_id: UUID,
        *,
        reason: CJCompletionReason,
        partial_scoring_triggered: bool,
        result: dict[str, Any],
        at: datetime,
    ) -> None:
        """Move a batch to COMPLETED with its completion reason and result."""
        ...

    async def mark_failed(
        self, batch_id: UUID, *, state: BatchState, error_detail: dict[str, Any], at: datetime
    ) -> None:
        """Move a batch to `state` (FAILED or CANCELLED) with its error detail."""
        ...


class EssayStore(Protocol):
    """The essays of batches and their final scores."""

    async def add(self, batch_id: UUID, essays: Sequence[EssayRecord]) -> None:
        """Insert the essays of a batch."""
        ...

    async def get(
        self, batch_id: UUID, positions: Collection[int] | None = None
    ) -> list[EssayRecord]:
        """The essays of a batch in position order; only those at `positions` when given (a
        top-up reads the texts of the pairs it requests, not the whole batch)."""
        ...

    async def scored(self, batch_id: UUID) -> list[ScoredEssay]:
        """The essays of a batch in position order as scoring sees them (ids and anchor
        grades, no text)."""
        ...

    async def count(self, batch_id: UUID) -> int:
        """How many essays (anchors included) a batch has, without reading them."""
        ...

    async def save_scores(self, batch_id: UUID, rankings: Sequence[EssayRanking]) -> None:
        """Store the final scores of a batch."""
        ...


class PairStore(Protocol):
    """The comparison pairs of batches."""

    async def add(self, batch_id: UUID, wave: int, pairs: Sequence[NewPair]) -> None:
        """Insert the pairs of a planning step."""
        ...

    async def by_request(self, request_ids: Sequence[UUID]) -> dict[UUID, PairRecord]:
        """The current pair rows for request ids (a hedged pair under both of its ids)."""
        ...

    async def outstanding(self, batch_id: UUID) -> tuple[list[PairRecord], set[UUID], float | None]:
        """A batch's pending pairs, the ids of those already hedged, and the median seconds from
        request to answer over its answered pairs (None before any)."""
        ...

    async def outcomes(self, batch_id: UUID, *, with_judges: bool = False) -> PairOutcomes:
        """Every pair of a batch, as scoring and planning see it; `with_judges` also reads which
        pairs are people's and who judged each."""
        ...

    async def release_human_pairs(self, batch_id: UUID, at: datetime) -> int:
        """Release a batch's pairs given to people that are neither judged nor submitted (status
        RELEASED); how many."""
        ...

    async def save_answers(self, answers: Sequence[PairAnswer], answered_at: datetime) -> None:
        """Store outcomes of pending pairs."""
        ...

    async def reissue(self, reissues: Sequence[PairReissue], requested_at: datetime) -> None:
        """Give pairs new request ids (and count the attempt)."""
        ...


class HedgeStore(Protocol):
    """The request ids of hedged pairs (README "Hedged requests")."""

    async def add(self, batch_id: UUID, hedges: Sequence[NewHedge], at: datetime) -> None:
        """Store both request ids of newly hedged pairs."""
        ...

    async def calls(self, request_ids: Sequence[UUID]) -> dict[UUID, list[HedgeCall]]:
        """Every request id of the hedged pairs among these request ids, by pair id."""
        ...

    async def mark_answered(self, request_ids: Sequence[UUID], at: datetime) -> None:
        """Record that these request ids of hedged pairs have been answered."""
        ...


@dataclass(frozen=True, slots=True)
class ErasureRecord:
    """The audit record of one erasure request: no text, only who, when and how much."""

    id: UUID
    batch_id: UUID
    requested_at: datetime
    requested_by: str | None
    batch_state: BatchState
    """The batch's state when the erasure was asked (a live batch is cancelled by it)."""
    erased: Mapping[str, int]


class TextLifecycleStore(Protocol):
    """Where essay texts end: the retention purge, erasure and its audit records."""

    async def lock_purgeable(self, finished_before: datetime, limit: int) -> list[UUID]:
        """Up to `limit` batches that finished (any terminal state) before `finished_before`
        and still hold their texts, locked with SKIP LOCKED."""
        ...

    async def blank_texts(self, batch_ids: Sequence[UUID], at: datetime) -> int:
        """Blank the essay texts of these batches and mark them purged at `at` (kept if
        already set); how many texts were still there."""
        ...

    async def delete_outbox_rows(self, topic: str, batch_id: UUID) -> int:
        """Delete every outbox row of `topic` of the batch (a request naming it in its
        `request_metadata`, or a row keyed by its id), published or not; how many."""
        ...

    async def erased_before(self, batch_id: UUID) -> bool:
        """True when an erasure of the batch has been recorded."""
        ...

    async def record_erasure(self, record: ErasureRecord) -> None:
        """Store an erasure's audit record."""
        ...


class EssaySetStore(Protocol):
    """Uploaded essay sets (the claim-check side of large requests)."""

    async def create(self, set_id: UUID, created_at: datetime, expires_at: datetime) -> None:
        """Insert an empty set; it is filled by `add_essays` and sealed after."""
        ...

    async def add_essays(self, set_id: UUID, essays: Sequence[EssayRecord]) -> None:
        """Append essays (with their upload positions) to a set."""
        ...

    async def seal(self, set_id: UUID, essay_count: int, content_sha256: str) -> None:
        """Record the set's essay count and digest once every essay is stored."""
        ...

    async def get(self, set_id: UUID, now: datetime) -> StoredEssaySet | None:
        """A sealed set with its essays in upload order; None when unknown, unsealed or expired
        at `now`."""
        ...

    async def delete_expired(self, now: datetime, limit: int) -> int:
        """Delete up to `limit` sets whose retention ended before `now`; how many were."""
        ...

    async def erase(self, set_id: UUID) -> tuple[int, int]:
        """Delete a set with its essays at once, expired or not: (sets, essays) deleted."""
        ...


class UnitOfWork(Protocol):
    """One transaction: a store per area, the outbox, and what runs once it has committed."""

    @property
    def batches(self) -> BatchStore: ...

    @property
    def essays(self) -> EssayStore: ...

    @property
    def pairs(self) -> PairStore: ...

    @property
    def hedges(self) -> HedgeStore: ...

    @property
    def essay_sets(self) -> EssaySetStore: ...

    @property
    def lifecycle(self) -> TextLifecycleStore: ...

    @property
    def human_judging(self) -> HumanJudgingStore: ...

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event in this transaction's outbox."""
        ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` (metrics, logs) once the transaction has committed."""
        ...


class Transactions(Protocol):
    """Opens a unit of work, committed when the block ends normally and rolled back when it
    raises."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]: ...


@dataclass(frozen=True, slots=True)
class HumanPairRecord:
    """A pair assigned to a human judge, as the judging page sees it (`answered`: its verdict
    or final error has been recorded by the batch)."""

    id: UUID
    batch_id: UUID
    judge_id: str
    essay_a: int
    essay_b: int
    request_id: UUID
    status: PairStatus
    requested_at: datetime
    submitted_at: datetime | None
    skipped_at: datetime | None

    @property
    def judged(self) -> bool:
        """True once the judge's verdict was staged or the batch recorded an answer."""
        return self.submitted_at is not None or self.status in (
            PairStatus.COMPLETED,
            PairStatus.FAILED,
        )


@dataclass(frozen=True, slots=True)
class JudgeProgress:
    """One human judge's pairs of a batch: all assigned (released ones included), judged,
    skipped and still to judge, and released at the deadline."""

    judge_id: str
    assigned: int = 0
    judged: int = 0
    skipped: int = 0
    remaining: int = 0
    released: int = 0


class HumanJudgingStore(Protocol):
    """The human judges' side of pairs and batches (the judging page and the organiser API)."""

    async def lock_pair(self, pair_id: UUID) -> HumanPairRecord | None:
        """A human pair, locked for this transaction (None: no such pair, or not a human's)."""
        ...

    async def next_pair(self, batch_id: UUID, judge_id: str) -> HumanPairRecord | None:
        """The judge's next pair to show: pending and not submitted, those never skipped first
        in planning order, then the skipped ones by when they were skipped."""
        ...

    async def progress(self, batch_id: UUID) -> dict[str, JudgeProgress]:
        """Every human judge's progress on a batch, by judge id (judges without pairs absent)."""
        ...

    async def mark_submitted(self, pair_id: UUID, at: datetime) -> None:
        """Record that the judge's verdict on a pair was staged."""
        ...

    async def mark_skipped(self, pair_id: UUID, at: datetime) -> None:
        """Record that the judge skipped a pair (it goes to the end of their queue)."""
        ...

    async def start(self, batch_id: UUID, request: HumanJudgingRequest) -> None:
        """Store a running batch's human judging and its deadline (the planner plans the
        judges' pairs at its next step)."""
        ...
