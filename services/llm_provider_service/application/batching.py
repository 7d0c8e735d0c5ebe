"""Batch mode: requests collected into provider batches, submitted once, polled, answered once.

A batch-mode request is handled (its Kafka offset may be committed) once it is recorded; the
submitter groups pending requests by provider and model for `LLM_BATCH_WINDOW_SECONDS` or up to
`LLM_BATCH_MAX_SIZE`, records the chunk as `submitting` under a fresh key before calling the
provider, and records the provider's batch id after. A chunk left `submitting` (a crash, a lost
answer) is looked up at the provider by its key before it is ever submitted again, so a request
is never billed twice. The poller checks submitted batches with backoff and, when one ends,
stages every request's callback in the outbox in the same transaction that marks it answered.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta
from typing import Any

import structlog

from common_core.events.envelope import EventEnvelope, encode_envelope
from common_core.events.llm import (
    LLMComparisonRequestV1,
    LLMMode,
    LLMProviderName,
    LLMRubricRequestV1,
)
from common_core.runtime.metrics import ROWS_PURGED
from llm_provider_service.application.answering import answer_key
from llm_provider_service.application.batch_results import (
    BatchCallbacks,
    request_kind,
    stored_request,
)
from llm_provider_service.application.judging import build_chat_request, prompt_call
from llm_provider_service.application.panel import model_cache_terms
from llm_provider_service.application.ports import (
    BatchAPI,
    BatchCall,
    ChatRequest,
    ItemOutcome,
    ProviderBatchRecord,
    QueuedRequest,
    Transactions,
    UnitOfWork,
)
from llm_provider_service.config import Settings
from llm_provider_service.domain.batches import missing_item_error, next_poll_interval
from llm_provider_service.domain.errors import JudgeError, ProviderNotConfiguredError
from llm_provider_service.metrics import BATCH_REQUESTS, PROVIDER_BATCH_POLLS, PROVIDER_BATCHES

log = structlog.get_logger(__name__)

# How much earlier than our own record a provider may date a batch we created (clock skew).
_CLOCK_SKEW = timedelta(minutes=5)
PURGE_CHUNK_REQUESTS = 1000
"""Answered requests the retention purge deletes per transaction."""

AnyRequest = LLMComparisonRequestV1 | LLMRubricRequestV1


class BatchIntake:
    """Decides which requests go through a provider batch and records them."""

    def __init__(
        self,
        settings: Settings,
        transactions: Transactions,
        providers: Collection[LLMProviderName],
    ) -> None:
        self._settings = settings
        self._transactions = transactions
        self._providers = frozenset(providers)

    def takes(self, request: object) -> bool:
        """Batch mode (asked for, or the default) with a provider whose batch API is set up.

        The heuristic judge has no batch API and answers at once; a provider without a key
        goes the synchronous way too, which answers `provider_unavailable`."""
        if not isinstance(request, LLMComparisonRequestV1 | LLMRubricRequestV1):
            return False
        mode = request.llm_config.mode or self._settings.llm_default_mode
        return mode is LLMMode.BATCH and self._provider(request) in self._providers

    async def enqueue(self, envelope: EventEnvelope[Any], key: str | None) -> bool:
        """Record the request (committed on return); False when it was already recorded."""
        request: AnyRequest = envelope.data
        provider = self._provider(request)
        queued = QueuedRequest(
            request_id=request.request_id,
            kind=request_kind(request),
            provider=provider.value,
            model=request.llm_config.model or self._settings.default_model(provider),
            envelope=encode_envelope(envelope).decode("utf-8"),
            message_key=answer_key(request, key),
        )
        async with self._transactions() as uow:
            added = await uow.batches.add_request(queued)

            def count() -> None:
                outcome = "queued" if added else "duplicate"
                BATCH_REQUESTS.labels(provider=provider.value, outcome=outcome).inc()
                log.info("batch_request_queued", kind=queued.kind, duplicate=not added)

            uow.after_commit(count)
        return added

    def _provider(self, request: AnyRequest) -> LLMProviderName:
        return request.llm_config.provider or self._settings.default_provider


def chat_request(item: QueuedRequest, settings: Settings) -> ChatRequest:
    """The chat call a queued request stands for: the same prompt and cache hints as a
    synchronous call."""
    request: AnyRequest = stored_request(item).data
    config = request.llm_config
    provider = LLMProviderName(item.provider)
    terms = model_cache_terms(settings, provider) if settings.llm_prompt_caching else None
    return build_chat_request(
        prompt_call(request),
        model=item.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens or settings.max_tokens(item.kind),
        cache_terms=terms(item.model) if terms is not None else None,
        top_logprobs=settings.verdict_top_logprobs(provider),
    )


def cache_friendly_order(calls: Sequence[BatchCall]) -> list[BatchCall]:
    """The calls ordered so that those sharing a cacheable prefix are adjacent.

    A provider's prompt cache serves a prefix only after a request that wrote it has run, and
    keeps it for minutes; items are worked through roughly in the order given. Sorting by the
    prompt text (system prompt, then the user message: static head, then essay A) puts every
    request with the same instructions and rubric together and, among them, every comparison
    with the same essay A, so each prefix is written once and read by its neighbours. Sorting
    is stable: calls with the same prompt keep their order."""
    return sorted(calls, key=lambda call: (call.request.system, call.request.user))


class BatchSubmitter:
    """Opens due chunks and submits each as one provider batch; reconciles lost submissions."""

    def __init__(
        self,
        settings: Settings,
        transactions: Transactions,
        apis: Mapping[LLMProviderName, BatchAPI],
        callbacks: BatchCallbacks,
    ) -> None:
        self._settings = settings
        self._transactions = transactions
        self._apis = {name.value: api for name, api in apis.items()}
        self._callbacks = callbacks
        # Providers whose lost submissions are found by shape, not key: one chunk at a time, so
        # a reconciliation can never adopt another chunk's batch nor resubmit one (double bill).
        self._one_at_a_time = frozenset(
            name for name, api in self._apis.items() if not api.finds_by_key
        )

    async def submit_due(self) -> bool:
        """Open and submit one due chunk; True when there was one (more may be due)."""
        settings = self._settings
        async with self._transactions() as uow:
            batch = await uow.batches.open_batch(
                window_seconds=settings.llm_batch_window_seconds,
                max_size=settings.llm_batch_max_size,
                lease_seconds=settings.llm_batch_submit_lease_seconds,
                poll_seconds=settings.llm_batch_poll_initial_seconds,
                one_at_a_time=self._one_at_a_time,
            )
            if batch is None:
                return False
            items = await uow.batches.requests_of(batch.id)
        await self._submit(batch, items)
        return True

    async def reconcile_one(self) -> bool:
        """Take one chunk whose submission was never recorded: adopt the provider batch its key
        created, or submit it now if there is none. True when there was such a chunk."""
        async with self._transactions() as uow:
            batch = await uow.batches.claim_unrecorded(
                lease_seconds=self._settings.llm_batch_submit_lease_seconds
            )
            if batch is None:
                return False
            items = await uow.batches.requests_of(batch.id)
            known = await uow.batches.known_provider_batches(batch.provider)
        api = self._apis.get(batch.provider)
        if api is None:
            await self._refuse(batch, items, _not_configured(batch.provider))
            return True
        try:
            found = await api.find(
                str(batch.id),
                item_count=batch.item_count,
                created_after=batch.created_at - _CLOCK_SKEW,
                known=known,
            )
        except JudgeError as exc:
            log.warning("provider_batch_lookup_failed", provider=batch.provider, error=exc.message)
            return True  # the lease runs out again; looked up on a later pass
        if found is not None:
            await self._record(batch, found)
            PROVIDER_BATCHES.labels(provider=batch.provider, event="reconciled").inc()
            log.info("provider_batch_reconciled", batch_id=str(batch.id), provider=batch.provider)
            return True
        await self._submit(batch, items)
        return True

    async def _submit(self, batch: ProviderBatchRecord, items: Sequence[QueuedRequest]) -> None:
        api = self._apis.get(batch.provider)
        if api is None:
            await self._refuse(batch, items, _not_configured(batch.provider))
            return
        calls = cache_friendly_order(
            [BatchCall(str(i.request_id), chat_request(i, self._settings)) for i in items]
        )
        try:
            provider_batch_id = await api.submit(calls, key=str(batch.id))
        except JudgeError as exc:
            if exc.retryable:
                # Perhaps created, perhaps not: the lease runs out and the chunk is reconciled
                # (looked up by its key) before anything is submitted again.
                log.warning(
                    "provider_batch_submit_failed",
                    provider=batch.provider,
                    error_code=exc.code.value,
                    batch_id=str(batch.id),
                )
                return
            await self._refuse(batch, items, exc)
            return
        await self._record(batch, provider_batch_id)
        PROVIDER_BATCHES.labels(provider=batch.provider, event="submitted").inc()
        log.info(
            "provider_batch_submitted",
            batch_id=str(batch.id),
            provider=batch.provider,
            model=batch.model,
            requests=len(items),
        )

    async def _record(self, batch: ProviderBatchRecord, provider_batch_id: str) -> None:
        async with self._transactions() as uow:
            recorded = await uow.batches.record_submission(
                batch.id,
                provider_batch_id,
                poll_seconds=self._settings.llm_batch_poll_initial_seconds,
            )
        if not recorded:
            log.error("provider_batch_record_lost", batch_id=str(batch.id))

    async def _refuse(
        self, batch: ProviderBatchRecord, items: Sequence[QueuedRequest], error: JudgeError
    ) -> None:
        """The provider will not take the chunk: every request gets the error as its callback."""
        async with self._transactions() as uow:
            await answer_all(uow, self._callbacks, items, lambda _item: error)
            await uow.batches.end_batch(batch.id, "refused")

            def count() -> None:
                PROVIDER_BATCHES.labels(provider=batch.provider, event="refused").inc()
                log.warning(
                    "provider_batch_refused",
                    batch_id=str(batch.id),
                    provider=batch.provider,
                    error_code=error.code.value,
                )

            uow.after_commit(count)


class BatchPoller:
    """Checks submitted provider batches (backoff per batch) and answers the ended ones."""

    def __init__(
        self,
        settings: Settings,
        transactions: Transactions,
        apis: Mapping[LLMProviderName, BatchAPI],
        callbacks: BatchCallbacks,
        *,
        batches_per_pass: int = 10,
    ) -> None:
        self._settings = settings
        self._transactions = transactions
        self._apis = {name.value: api for name, api in apis.items()}
        self._callbacks = callbacks
        self.batches_per_pass = batches_per_pass

    async def poll_due(self) -> int:
        """Check every due batch (locked for the pass, so instances share the work)."""
        async with self._transactions() as uow:
            batches = await uow.batches.claim_due(self.batches_per_pass)
            for batch in batches:
                await self._check(uow, batch)
        return len(batches)

    async def _check(self, uow: UnitOfWork, batch: ProviderBatchRecord) -> None:
        api = self._apis.get(batch.provider)
        assert batch.provider_batch_id is not None  # submitted batches have one
        if api is None:
            await self._later(uow, batch, "error")
            log.error("provider_batch_unpollable", provider=batch.provider)
            return
        try:
            progress = await api.progress(batch.provider_batch_id)
            if progress.end is None:
                await self._later(uow, batch, "running")
                return
            outcomes = await api.outcomes(batch.provider_batch_id)
        except JudgeError as exc:
            log.warning("provider_batch_poll_failed", provider=batch.provider, error=exc.message)
            await self._later(uow, batch, "error")
            return
        end = progress.end
        by_id = {outcome.custom_id: outcome for outcome in outcomes}
        items = await uow.batches.requests_of(batch.id)

        def outcome_of(item: QueuedRequest) -> ItemOutcome | JudgeError:
            return by_id.get(str(item.request_id)) or missing_item_error(end)

        await answer_all(uow, self._callbacks, items, outcome_of)
        await uow.batches.end_batch(batch.id, end.value)

        def count() -> None:
            PROVIDER_BATCH_POLLS.labels(provider=batch.provider, result="ended").inc()
            PROVIDER_BATCHES.labels(provider=batch.provider, event=end.value).inc()
            log.info(
                "provider_batch_ended",
                batch_id=str(batch.id),
                provider=batch.provider,
                outcome=end.value,
                status=progress.status,
                requests=len(items),
                answered=sum(1 for i in items if str(i.request_id) in by_id),
            )

        uow.after_commit(count)

    async def purge(self) -> int:
        """Forget requests answered longer ago than `LLM_BATCH_RETENTION_HOURS` (a redelivery
        is de-duplicated against them until then; their text went when they were answered),
        `PURGE_CHUNK_REQUESTS` per transaction; how many. Counted as
        `huleedu_retention_rows_purged_total{kind="llm_batch_items"}`."""
        older_than = self._settings.llm_batch_retention_hours * 3600
        purged = 0
        while True:
            async with self._transactions() as uow:
                chunk = await uow.batches.purge_finished(older_than, PURGE_CHUNK_REQUESTS)
                uow.after_commit(functools.partial(_count_purged, chunk))
            purged += chunk
            if chunk < PURGE_CHUNK_REQUESTS:
                return purged

    async def _later(self, uow: UnitOfWork, batch: ProviderBatchRecord, result: str) -> None:
        interval = next_poll_interval(
            batch.poll_interval_seconds,
            initial=self._settings.llm_batch_poll_initial_seconds,
            maximum=self._settings.llm_batch_poll_max_seconds,
        )
        await uow.batches.schedule_poll(batch.id, interval)
        uow.after_commit(
            lambda: PROVIDER_BATCH_POLLS.labels(provider=batch.provider, result=result).inc()
        )


async def answer_all(
    uow: UnitOfWork,
    callbacks: BatchCallbacks,
    items: Sequence[QueuedRequest],
    outcome_of: Callable[[QueuedRequest], ItemOutcome | JudgeError],
) -> None:
    """Stage each request's callback and mark it answered, in the caller's transaction; the
    answers are counted once it commits."""
    for item in items:
        outcome = outcome_of(item)
        if isinstance(outcome, JudgeError):
            outcome = ItemOutcome(str(item.request_id), error=outcome)
        callback = callbacks.callback(item, outcome)
        uow.stage_event(callback.topic, callback.envelope, callback.key)
        uow.after_commit(callback.count)
        await uow.batches.finish_request(item.request_id)


def _not_configured(provider: str) -> JudgeError:
    return ProviderNotConfiguredError(
        f"provider {provider!r} has no batch API configured on this service",
        details={"provider": provider},
    )


def _count_purged(requests: int) -> None:
    ROWS_PURGED.labels(kind="llm_batch_items").inc(requests)
