"""The ports of the use cases: the Protocols they depend on (judges, chat models) and the
records they exchange with them."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypedDict, TypeVar
from uuid import UUID

from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMComparisonRequestV1, LLMRubricRequestV1, TokenUsage
from llm_provider_service.domain.answers import ComparisonAnswer, RubricAnswer
from llm_provider_service.domain.batches import BatchEnd
from llm_provider_service.domain.errors import JudgeError
from llm_provider_service.domain.prompts import RenderedPrompt
from llm_provider_service.domain.verdict_probability import TokenLogprob

AnswerT = TypeVar("AnswerT", ComparisonAnswer, RubricAnswer)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The model and sampling settings resolved for one request."""

    model: str
    temperature: float | None
    max_tokens: int


@dataclass(frozen=True, slots=True)
class Judgement(Generic[AnswerT]):
    """A judge's answer with what it cost and the prompt it came from."""

    answer: AnswerT
    model: str
    prompt: RenderedPrompt
    usage: TokenUsage
    # A comparison's P(essay A is better) from the judge itself (the verdict token's
    # log-probabilities, the heuristic's calibrated margin); None when it gives none.
    probability_essay_a_better: float | None = None


class Judge(Protocol):
    """A provider able to compare two essays and to score an answer on a rubric."""

    async def compare(
        self, request: LLMComparisonRequestV1, choice: ModelChoice
    ) -> Judgement[ComparisonAnswer]:
        """Which essay is better; raises a JudgeError when no answer can be had."""
        ...

    async def score(
        self, request: LLMRubricRequestV1, choice: ModelChoice
    ) -> Judgement[RubricAnswer]:
        """Rubric scores for the answer; raises a JudgeError when no answer can be had."""
        ...


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One structured-output chat call."""

    model: str
    system: str
    user: str
    schema_name: str
    schema: dict[str, Any]
    temperature: float | None
    max_tokens: int
    # Prompt caching (docs/contracts.md): each of `cache_breakpoints` is the length of a head of
    # `user` that closes a cacheable prefix (Anthropic `cache_control`; ascending; empty = no
    # breakpoint); `cache_key` is OpenAI's `prompt_cache_key` (None = caching off).
    cache_breakpoints: tuple[int, ...] = ()
    cache_key: str | None = None
    # Log-probabilities of the answer tokens with this many alternatives per position (OpenAI
    # `logprobs`/`top_logprobs`; a provider without them ignores it); None: not asked for.
    top_logprobs: int | None = None


class ReplyTokens(TypedDict, total=False):
    """A reply's token counts as an SDK adapter reads them from the provider's usage."""

    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    cache_write_tokens: int


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The model's raw text answer and its token usage (`prompt_tokens` counts every input
    token, the cached and cache-written ones included)."""

    text: str | None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    # The answer tokens with their log-probabilities, when asked for and returned.
    logprobs: tuple[TokenLogprob, ...] | None = None


class ChatModel(Protocol):
    """A chat-completion API (an SDK adapter); raises the domain's provider errors."""

    async def complete(self, request: ChatRequest) -> ChatReply:
        """Send the prompt, return the answer text."""
        ...


class RateBudget(Protocol):
    """A provider's request and token budgets (per process, or shared by every instance)."""

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait until one more request and its estimated tokens fit the budgets."""
        ...


@dataclass(frozen=True, slots=True)
class BatchCall:
    """One request of a provider batch: its custom id (the request id) and its chat call."""

    custom_id: str
    request: ChatRequest


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A provider batch's state: `end` is None while it runs."""

    end: BatchEnd | None
    status: str


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """The provider's answer to one request of a batch: a reply or an error."""

    custom_id: str
    reply: ChatReply | None = None
    error: JudgeError | None = None


class BatchAPI(Protocol):
    """A provider's batch API (an SDK adapter); raises the domain's provider errors."""

    # True when `find` knows a batch by the key it was submitted with (the provider keeps
    # metadata); False when it can only match a batch's shape, so a lost submission is known
    # for certain only while no other chunk of the provider is being submitted.
    finds_by_key: bool

    async def submit(self, calls: Sequence[BatchCall], *, key: str) -> str:
        """Submit the calls as one provider batch tagged with `key`; its provider id."""
        ...

    async def find(
        self, key: str, *, item_count: int, created_after: datetime, known: Collection[str]
    ) -> str | None:
        """The provider batch an earlier `submit` with `key` created, if it did (reconciliation
        after a crash between submitting and recording); `known` ids are already recorded."""
        ...

    async def progress(self, batch_id: str) -> BatchProgress:
        """Whether the batch still runs, or how it ended."""
        ...

    async def outcomes(self, batch_id: str) -> list[ItemOutcome]:
        """The answers and per-item errors of an ended batch (items it never ran are absent)."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A batch-mode request as stored until its callback is staged; `message_key` is the Kafka
    key its answer will be published with (`answer_key`: a CJ comparison's is its batch id, by
    which an erasure of the batch finds the requests still waiting)."""

    request_id: UUID
    kind: str
    provider: str
    model: str
    envelope: str
    message_key: str | None
    queued_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProviderBatchRecord:
    """A chunk of requests submitted (or being submitted) as one provider batch."""

    id: UUID
    provider: str
    model: str
    provider_batch_id: str | None
    item_count: int
    poll_interval_seconds: float
    created_at: datetime


class BatchStore(Protocol):
    """Batch-mode state in one transaction (the unit of work commits it)."""

    async def add_request(self, request: QueuedRequest) -> bool:
        """Record a request; False when its request id is already known (a redelivery)."""
        ...

    async def open_batch(
        self,
        *,
        window_seconds: float,
        max_size: int,
        lease_seconds: float,
        poll_seconds: float,
        one_at_a_time: Collection[str] = (),
    ) -> ProviderBatchRecord | None:
        """Lock the pending requests of the oldest provider/model group that is due (oldest
        older than the window, or a full chunk) and put up to `max_size` of them into a new
        batch in state `submitting`, leased for `lease_seconds`; None when nothing is due.
        A provider in `one_at_a_time` gets no new batch while one of its batches is
        `submitting`, across every instance."""
        ...

    async def requests_of(self, batch_id: UUID) -> list[QueuedRequest]:
        """The requests of a batch, oldest first."""
        ...

    async def record_submission(
        self, batch_id: UUID, provider_batch_id: str, *, poll_seconds: float
    ) -> bool:
        """Mark a `submitting` batch submitted with its provider id; False if it is not."""
        ...

    async def claim_unrecorded(self, *, lease_seconds: float) -> ProviderBatchRecord | None:
        """Lease one `submitting` batch whose lease ran out (its submitter died or failed)."""
        ...

    async def known_provider_batches(self, provider: str) -> set[str]:
        """The provider batch ids already recorded for a provider."""
        ...

    async def claim_due(self, limit: int) -> list[ProviderBatchRecord]:
        """Lock up to `limit` submitted batches whose next status check is due."""
        ...

    async def schedule_poll(self, batch_id: UUID, interval_seconds: float) -> None:
        """Check the batch again after `interval_seconds`."""
        ...

    async def end_batch(self, batch_id: UUID, outcome: str) -> None:
        """Mark the batch ended (its requests answered) with how it ended."""
        ...

    async def finish_request(self, request_id: UUID) -> None:
        """Mark a request answered (its callback is staged in the same transaction)."""
        ...

    async def drop_waiting(self, message_key: str) -> tuple[int, int]:
        """Delete the requests of a Kafka key (a CJ batch id) not yet in a provider batch:
        (deleted, still at a provider: kept until answered)."""
        ...

    async def purge_finished(self, older_than_seconds: float, limit: int = 1000) -> int:
        """Forget up to `limit` answered requests finished longer ago, and the ended batches
        left without requests; how many requests."""
        ...


class UnitOfWork(Protocol):
    """One transaction: its stores per area, its outbox and what runs once it has committed."""

    @property
    def batches(self) -> BatchStore:
        """Batch-mode requests and provider batches."""
        ...

    def stage_event(self, topic: str, envelope: EventEnvelope[Any], key: str | None) -> None:
        """Put an event into the outbox; it is published once the transaction commits."""
        ...

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` (metrics, logs that count the change) once the transaction committed."""
        ...


class Transactions(Protocol):
    """Opens a unit of work: committed when the block ends normally, rolled back if it raises."""

    def __call__(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A new transaction."""
        ...
