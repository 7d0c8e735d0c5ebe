"""The CJ batch use cases: register a request, record comparison results, finish, fail, recover.

Every function runs inside the caller's transaction (one per request event, one per fetched
batch of callbacks, one per monitor pass) through a `BatchRepository`; outgoing events are
staged in the outbox of that same transaction.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import structlog
from pydantic import BaseModel

from cj_assessment_service import metrics
from cj_assessment_service.application.ports import (
    PAIR_COMPLETED,
    PAIR_FAILED,
    PAIR_PENDING,
    BatchRecord,
    BatchRepository,
    EssayRecord,
    NewPair,
    PairAnswer,
    PairOutcome,
    PairRecord,
    PairReissue,
)
from cj_assessment_service.config import SERVICE_NAME, Settings
from cj_assessment_service.domain.batch import (
    BatchState,
    WaveOutcome,
    comparison_budget,
    decide_after_wave,
    effective_budget,
    partial_scoring_due,
    plan_first_wave,
    plan_next_wave,
    recovery_decision,
    success_rate,
    transition,
)
from cj_assessment_service.domain.bradley_terry import Comparisons, fit_bradley_terry
from cj_assessment_service.domain.errors import BatchAlreadyFinished, BatchNotFound
from cj_assessment_service.domain.pair_planning import OrderedPair
from cj_assessment_service.domain.scoring import AnsweredComparison, ScoredEssay, score_batch
from common_core.errors import ErrorCode, ErrorDetail
from common_core.events.cj import (
    CJAssessmentCompletedV1,
    CJAssessmentFailedV1,
    CJAssessmentRequestV1,
    CJCompletionReason,
    ResourceUsage,
    SystemMetadata,
)
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import (
    ComparisonEssay,
    ComparisonWinner,
    LLMComparisonRequestV1,
    LLMComparisonResultV1,
    LLMConfig,
)
from common_core.topics import Topic

log = structlog.get_logger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _BatchChanges:
    completed: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class CallbackReport:
    """What one fetched batch of callbacks did (for metrics and tests)."""

    recorded: int = 0
    failed: int = 0
    retried: int = 0
    duplicates: int = 0
    late: int = 0
    orphans: int = 0
    latencies: list[float] = field(default_factory=list)


@dataclass
class MonitorReport:
    """What one monitor pass did."""

    detected: int = 0
    recovered: int = 0
    failed: int = 0
    partial_scored: int = 0


class CJWorkflow:
    """The batch use cases, configured by the service settings."""

    def __init__(self, settings: Settings, *, seed: int | None = None) -> None:
        self._settings = settings
        self._random = random.Random(seed)

    def _rng(self) -> np.random.Generator:
        return np.random.default_rng(self._random.getrandbits(64))

    # ----------------------------------------------------------------------------------- requests

    async def handle_request(
        self, repo: BatchRepository, envelope: EventEnvelope[CJAssessmentRequestV1]
    ) -> UUID | None:
        """Create (and start) a batch for a request; None for a duplicate request."""
        request = envelope.data
        if not await repo.claim_request(envelope.event_id):
            self._count_request(repo, "duplicate")
            return None
        if await repo.live_batch_id(request.entity_ref) is not None:
            self._count_request(repo, "duplicate")
            return None
        essays = [
            EssayRecord(i, e.essay_id, e.text_content)
            for i, e in enumerate(request.essays_to_process)
        ]
        essays += [
            EssayRecord(len(essays) + i, a.essay_id, a.text_content, a.grade)
            for i, a in enumerate(request.anchors)
        ]
        now = _now()
        n_total = len(essays)
        budget = effective_budget(
            n_total,
            comparison_budget(
                n_total, request.max_comparisons, self._settings.default_comparisons_per_essay
            ),
        )
        batch = BatchRecord(
            id=uuid4(),
            entity_ref=request.entity_ref,
            correlation_id=envelope.correlation_id,
            request_event_id=envelope.event_id,
            state=BatchState.INITIALIZING,
            essay_count=len(request.essays_to_process),
            budget=budget,
            planned=0,
            completed=0,
            failed=0,
            waves=0,
            partial_scoring_triggered=False,
            threshold_reached_at=None,
            completion_reason=None,
            request_settings=self._request_settings(request),
            previous_scores=None,
            result=None,
            error_detail=None,
            prompt_tokens=0,
            completion_tokens=0,
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            finished_at=None,
        )
        problem = _validation_problem(request)
        # An invalid request is kept as a FAILED batch (visible over HTTP) without its essays.
        await repo.add_batch(batch, essays if problem is None else [])
        if problem is not None:
            self._count_request(repo, "invalid")
            await self._fail(repo, batch, ErrorCode.VALIDATION, problem, operation="validate")
            return batch.id
        if len(request.essays_to_process) < 2:
            self._count_request(repo, "insufficient")
            await self._finish(repo, batch, CJCompletionReason.INSUFFICIENT_ESSAYS)
            return batch.id
        self._count_request(repo, "accepted")
        plan = plan_first_wave(
            n_total,
            budget,
            comparisons_per_essay=self._settings.default_comparisons_per_essay,
            max_pairs_per_wave=self._settings.max_pairs_per_wave,
            rng=self._rng(),
        )
        state = transition(batch.state, BatchState.GENERATING_PAIRS)
        await self._request_wave(repo, replace(batch, state=state), essays, plan.pairs, wave=1)
        await repo.update_batch(
            batch.id,
            state=transition(state, BatchState.WAITING_CALLBACKS),
            planned=len(plan.pairs),
            waves=1,
        )
        log.info("cj_batch_started", batch_id=str(batch.id), essays=n_total, pairs=len(plan.pairs))
        return batch.id

    def _count_request(self, repo: BatchRepository, outcome: str) -> None:
        repo.after_commit(lambda: metrics.REQUESTS_HANDLED.labels(outcome=outcome).inc())

    def _request_settings(self, request: CJAssessmentRequestV1) -> dict[str, Any]:
        overrides = request.llm_config_overrides or LLMConfig()
        config = LLMConfig(
            provider=overrides.provider or self._settings.default_llm_provider,
            model=overrides.model or self._settings.default_llm_model,
            temperature=overrides.temperature,
            max_tokens=overrides.max_tokens,
        )
        return {
            "language": request.language,
            "course_code": request.course_code,
            "essay_instructions": request.essay_instructions,
            "judge_rubric": request.judge_rubric,
            "llm_config": config.model_dump(mode="json"),
            "max_comparisons": request.max_comparisons,
        }

    async def _stage(
        self,
        repo: BatchRepository,
        topic: Topic,
        payload: BaseModel,
        *,
        batch: BatchRecord,
        key: str,
    ) -> None:
        """Stage an event about `batch` (its correlation id) in this transaction's outbox."""
        name = self._settings.topic(topic)
        envelope = EventEnvelope[Any](
            event_type=name,
            source_service=SERVICE_NAME,
            correlation_id=batch.correlation_id,
            data=payload,
        )
        await repo.stage_event(name, envelope, key=key)

    async def _request_wave(
        self,
        repo: BatchRepository,
        batch: BatchRecord,
        essays: Sequence[EssayRecord],
        pairs: Sequence[OrderedPair],
        *,
        wave: int,
    ) -> None:
        new_pairs = [NewPair(uuid4(), a, b, uuid4()) for a, b in pairs]
        await repo.add_pairs(batch.id, wave, new_pairs)
        for pair in new_pairs:
            await self._stage_comparison(repo, batch, essays, pair)

    async def _stage_comparison(
        self,
        repo: BatchRepository,
        batch: BatchRecord,
        essays: Sequence[EssayRecord],
        pair: NewPair,
    ) -> None:
        settings = batch.request_settings
        first, second = essays[pair.essay_a], essays[pair.essay_b]
        payload = LLMComparisonRequestV1(
            request_id=pair.request_id,
            essay_a=ComparisonEssay(essay_id=first.essay_id, text_content=first.text_content),
            essay_b=ComparisonEssay(essay_id=second.essay_id, text_content=second.text_content),
            essay_instructions=settings.get("essay_instructions") or "",
            judge_rubric=settings.get("judge_rubric"),
            language=settings.get("language") or "en",
            llm_config=LLMConfig.model_validate(settings.get("llm_config") or {}),
            callback_topic=self._settings.callback_topic,
            request_metadata={"batch_id": str(batch.id), "pair_id": str(pair.id)},
        )
        await self._stage(
            repo, Topic.LLM_COMPARISON_REQUESTED, payload, batch=batch, key=str(batch.id)
        )

    # ---------------------------------------------------------------------------------- callbacks

    async def record_results(
        self,
        repo: BatchRepository,
        results: Sequence[LLMComparisonResultV1],
    ) -> CallbackReport:
        """Record a fetched batch of comparison results in one transaction."""
        report = CallbackReport()
        request_ids = list(dict.fromkeys(r.request_id for r in results))
        batches = await repo.lock_batches_for_requests(request_ids)
        # Read pairs only after the batch locks: every writer of a batch's pairs holds it.
        pairs = await repo.pairs_by_request(request_ids) if batches else {}
        report.orphans = sum(1 for r in results if r.request_id not in pairs)
        if pairs:
            now = _now()
            changes, reissues = await self._apply_results(
                repo, results, pairs=pairs, batches=batches, report=report, now=now
            )
            if reissues:
                await self._reissue(repo, reissues, pairs, batches, now)
            for batch_id, delta in changes.items():
                await self._update_counters(repo, batches[batch_id], delta, now)
        self._report_callbacks(repo, report)
        return report

    async def _apply_results(
        self,
        repo: BatchRepository,
        results: Sequence[LLMComparisonResultV1],
        *,
        pairs: dict[UUID, PairRecord],
        batches: dict[UUID, BatchRecord],
        report: CallbackReport,
        now: datetime,
    ) -> tuple[dict[UUID, _BatchChanges], list[PairReissue]]:
        changes: dict[UUID, _BatchChanges] = {}
        answers: list[PairAnswer] = []
        reissues: list[PairReissue] = []
        handled: set[UUID] = set()
        for result in results:
            pair = pairs.get(result.request_id)
            if pair is None:
                continue
            if pair.status != PAIR_PENDING or pair.request_id in handled:
                report.duplicates += 1
                continue
            handled.add(pair.request_id)
            if batches[pair.batch_id].state.is_terminal:
                report.late += 1
                continue
            delta = changes.setdefault(pair.batch_id, _BatchChanges())
            delta.prompt_tokens += result.usage.prompt_tokens
            delta.completion_tokens += result.usage.completion_tokens
            report.latencies.append(max(0.0, (now - pair.requested_at).total_seconds()))
            error = result.error_detail
            if error is None:
                winner = (result.winner or ComparisonWinner.ESSAY_A).value
                answers.append(PairAnswer(pair.id, PAIR_COMPLETED, winner, None))
                delta.completed += 1
                report.recorded += 1
            elif error.retryable and pair.attempts <= self._settings.max_retries_per_pair:
                reissues.append(PairReissue(pair.id, uuid4()))
                report.retried += 1
            else:
                answers.append(PairAnswer(pair.id, PAIR_FAILED, None, error.code.value))
                delta.failed += 1
                report.failed += 1
        await repo.save_answers(answers, now)
        return changes, reissues

    async def _reissue(
        self,
        repo: BatchRepository,
        reissues: list[PairReissue],
        pairs: dict[UUID, PairRecord],
        batches: dict[UUID, BatchRecord],
        now: datetime,
    ) -> None:
        """Ask pairs again under new request ids after retryable errors."""
        await repo.reissue_pairs(reissues, now)
        by_id = {p.id: p for p in pairs.values()}
        essays: dict[UUID, list[EssayRecord]] = {}
        for reissue in reissues:
            pair = by_id[reissue.pair_id]
            if pair.batch_id not in essays:
                essays[pair.batch_id] = await repo.essays(pair.batch_id)
            new_pair = NewPair(pair.id, pair.essay_a, pair.essay_b, reissue.request_id)
            await self._stage_comparison(
                repo, batches[pair.batch_id], essays[pair.batch_id], new_pair
            )

    async def _update_counters(
        self, repo: BatchRepository, before: BatchRecord, delta: _BatchChanges, now: datetime
    ) -> None:
        batch = replace(
            before,
            completed=before.completed + delta.completed,
            failed=before.failed + delta.failed,
            prompt_tokens=before.prompt_tokens + delta.prompt_tokens,
            completion_tokens=before.completion_tokens + delta.completion_tokens,
            last_activity_at=now,
        )
        update: dict[str, Any] = {
            "completed": batch.completed,
            "failed": batch.failed,
            "prompt_tokens": batch.prompt_tokens,
            "completion_tokens": batch.completion_tokens,
            "last_activity_at": now,
        }
        if batch.threshold_reached_at is None and partial_scoring_due(
            answered=batch.answered,
            budget=batch.budget,
            threshold_pct=self._settings.completion_threshold_pct,
        ):
            update["threshold_reached_at"] = now
            batch = replace(batch, threshold_reached_at=now)
        await repo.update_batch(batch.id, **update)
        if batch.pending == 0 and batch.state == BatchState.WAITING_CALLBACKS:
            await self._after_wave(repo, batch)

    def _report_callbacks(self, repo: BatchRepository, report: CallbackReport) -> None:
        def record() -> None:
            for outcome, count in (
                ("recorded", report.recorded),
                ("failed", report.failed),
                ("retried", report.retried),
                ("duplicate", report.duplicates),
                ("late", report.late),
                ("orphan", report.orphans),
            ):
                if count:
                    metrics.CALLBACKS_PROCESSED.labels(outcome=outcome).inc(count)
            if report.orphans:
                metrics.ORPHAN_CALLBACKS.inc(report.orphans)
            for latency in report.latencies:
                metrics.CALLBACK_LATENCY.observe(latency)

        repo.after_commit(record)

    # ------------------------------------------------------------------------------------- waves

    async def _after_wave(self, repo: BatchRepository, batch: BatchRecord) -> None:
        """Every pair of the wave is answered: fail, finish, or plan the next wave."""
        pairs = await repo.pair_outcomes(batch.id)
        n = await self._essay_total(repo, batch)
        unordered = len({frozenset((p.essay_a, p.essay_b)) for p in pairs})
        # Budget, all-pairs and success rate need no fit; the stability check does.
        outcome = self._decide(batch, n, unordered, change=None)
        if outcome.finish is None and not outcome.fail_low_success:
            answered = [p for p in pairs if p.status == PAIR_COMPLETED]
            scores, errors = _fit_for_planning(n, answered)
            if batch.previous_scores is not None and len(batch.previous_scores) == n:
                change = float(np.max(np.abs(scores - np.asarray(batch.previous_scores))))
                repo.after_commit(lambda: metrics.SCORE_STABILITY_CHANGE.observe(change))
                outcome = self._decide(batch, n, unordered, change=change)
        if outcome.fail_low_success:
            await self._fail_low_success(repo, batch)
            return
        if outcome.finish is not None:
            await self._finish(repo, batch, outcome.finish, pairs=pairs)
            return
        plan = plan_next_wave(
            scores,
            errors,
            [(p.essay_a, p.essay_b) for p in pairs],
            batch.budget - batch.planned,
            max_pairs_per_wave=self._settings.max_pairs_per_wave,
            rng=self._rng(),
        )
        if not plan.pairs:
            await self._finish(repo, batch, CJCompletionReason.ALL_PAIRS_COMPARED, pairs=pairs)
            return
        generating = replace(batch, state=transition(batch.state, BatchState.GENERATING_PAIRS))
        essays = await repo.essays(batch.id)
        await self._request_wave(repo, generating, essays, plan.pairs, wave=batch.waves + 1)
        await repo.update_batch(
            batch.id,
            state=transition(generating.state, BatchState.WAITING_CALLBACKS),
            planned=batch.planned + len(plan.pairs),
            waves=batch.waves + 1,
            previous_scores=[round(float(s), 6) for s in scores],
        )
        log.info(
            "cj_wave_planned", batch_id=str(batch.id), wave=batch.waves + 1, pairs=len(plan.pairs)
        )

    def _decide(
        self, batch: BatchRecord, n: int, unordered: int, *, change: float | None
    ) -> WaveOutcome:
        return decide_after_wave(
            n_essays=n,
            budget=batch.budget,
            planned=batch.planned,
            completed=batch.completed,
            failed=batch.failed,
            min_success_rate=self._settings.min_success_rate_threshold,
            unordered_pairs_compared=unordered,
            max_score_change=change,
            stability_threshold=self._settings.stability_threshold,
        )

    async def _essay_total(self, repo: BatchRepository, batch: BatchRecord) -> int:
        return len(await repo.essays(batch.id))

    # ------------------------------------------------------------------------------- completion

    async def _finish(
        self,
        repo: BatchRepository,
        batch: BatchRecord,
        reason: CJCompletionReason,
        *,
        partial: bool = False,
        pairs: list[PairOutcome] | None = None,
    ) -> None:
        """Score the batch and stage exactly one completed event, in this transaction.

        `pairs` are the batch's pairs when the caller has just read them under the batch lock.
        """
        scoring_state = batch.state
        if batch.state not in (BatchState.SCORING, BatchState.INITIALIZING):
            scoring_state = transition(batch.state, BatchState.SCORING)
        essays = await repo.essays(batch.id)
        if pairs is None:
            pairs = await repo.pair_outcomes(batch.id)
        answered = [
            AnsweredComparison(p.essay_a, p.essay_b, p.winner == ComparisonWinner.ESSAY_A.value)
            for p in pairs
            if p.status == PAIR_COMPLETED
        ]
        scored = score_batch([ScoredEssay(e.essay_id, e.anchor_grade) for e in essays], answered)
        now = _now()
        payload = CJAssessmentCompletedV1(
            entity_ref=batch.entity_ref,
            cj_assessment_job_id=str(batch.id),
            completion_reason=reason,
            rankings=scored.rankings,
            statistics=scored.statistics,
            grade_projections=scored.grade_projections,
            system_metadata=self._system_metadata(batch, now),
        )
        await self._stage(
            repo, Topic.CJ_ASSESSMENT_COMPLETED, payload, batch=batch, key=batch.entity_ref
        )
        await repo.save_scores(batch.id, scored.rankings)
        await repo.update_batch(
            batch.id,
            state=transition(scoring_state, BatchState.COMPLETED),
            completion_reason=reason.value,
            partial_scoring_triggered=batch.partial_scoring_triggered or partial,
            result=payload.model_dump(
                mode="json", include={"rankings", "statistics", "grade_projections"}
            ),
            finished_at=now,
        )
        progress = batch.answered / batch.budget if batch.budget else 1.0

        def record() -> None:
            metrics.BATCHES_FINISHED.labels(state="COMPLETED", reason=reason.value).inc()
            metrics.BATCH_PROGRESS.observe(progress)
            metrics.WAVES_PER_BATCH.observe(batch.waves)

        repo.after_commit(record)
        log.info(
            "cj_batch_completed",
            batch_id=str(batch.id),
            reason=reason.value,
            comparisons=len(answered),
        )

    def _system_metadata(self, batch: BatchRecord, now: datetime) -> SystemMetadata:
        return SystemMetadata(
            source_service=SERVICE_NAME,
            processed_at=now,
            processing_duration_seconds=max(0.0, (now - batch.created_at).total_seconds()),
            resource_usage=ResourceUsage(
                total_comparisons=batch.planned,
                completed_comparisons=batch.completed,
                failed_comparisons=batch.failed,
                prompt_tokens=batch.prompt_tokens,
                completion_tokens=batch.completion_tokens,
            ),
        )

    async def _fail_low_success(self, repo: BatchRepository, batch: BatchRecord) -> None:
        rate = success_rate(batch.completed, batch.failed)
        await self._fail(
            repo,
            batch,
            ErrorCode.LOW_SUCCESS_RATE,
            f"only {rate:.0%} of comparisons succeeded; "
            f"{self._settings.min_success_rate_threshold:.0%} required",
            operation="score",
            details={"completed": batch.completed, "failed": batch.failed},
        )

    async def _fail(
        self,
        repo: BatchRepository,
        batch: BatchRecord,
        code: ErrorCode,
        message: str,
        *,
        operation: str,
        state: BatchState = BatchState.FAILED,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Stage exactly one failed event and move the batch to FAILED (or CANCELLED)."""
        now = _now()
        detail = ErrorDetail(
            code=code,
            message=message,
            correlation_id=batch.correlation_id,
            service=SERVICE_NAME,
            operation=operation,
            retryable=False,
            details=details or {},
        )
        payload = CJAssessmentFailedV1(
            entity_ref=batch.entity_ref,
            cj_assessment_job_id=str(batch.id),
            error_detail=detail,
            system_metadata=self._system_metadata(batch, now),
        )
        await self._stage(
            repo, Topic.CJ_ASSESSMENT_FAILED, payload, batch=batch, key=batch.entity_ref
        )
        await repo.update_batch(
            batch.id,
            state=transition(batch.state, state),
            error_detail=detail.model_dump(mode="json"),
            finished_at=now,
        )
        repo.after_commit(
            lambda: metrics.BATCHES_FINISHED.labels(state=state.value, reason=code.value).inc()
        )
        log.info("cj_batch_failed", batch_id=str(batch.id), code=code.value, state=state.value)

    # ------------------------------------------------------------------------- monitor and cancel

    async def check_stale_batches(self, repo: BatchRepository) -> MonitorReport:
        """One monitor pass: partial scoring after the grace; recover or fail stuck batches."""
        report = MonitorReport()
        now = _now()
        settings = self._settings
        stale = await repo.lock_stale_batches(
            inactive_since=_ago(now, settings.stuck_batch_timeout_seconds),
            threshold_since=_ago(now, settings.partial_scoring_grace_seconds),
            limit=settings.monitor_batch_limit,
        )
        for batch in stale:
            with structlog.contextvars.bound_contextvars(batch_id=str(batch.id)):
                await self._handle_stale(repo, batch, now, report)

        def record() -> None:
            metrics.STUCK_BATCHES_DETECTED.inc(report.detected)
            metrics.STUCK_BATCHES_RECOVERED.inc(report.recovered)
            metrics.STUCK_BATCHES_FAILED.inc(report.failed)
            metrics.PARTIAL_SCORING_TRIGGERED.inc(report.partial_scored)

        repo.after_commit(record)
        return report

    async def _handle_stale(
        self, repo: BatchRepository, batch: BatchRecord, now: datetime, report: MonitorReport
    ) -> None:
        settings = self._settings
        grace_over = batch.threshold_reached_at is not None and (
            (now - batch.threshold_reached_at).total_seconds()
            >= settings.partial_scoring_grace_seconds
        )
        if batch.state == BatchState.WAITING_CALLBACKS and grace_over:
            if success_rate(batch.completed, batch.failed) < settings.min_success_rate_threshold:
                await self._fail_low_success(repo, batch)
                return
            report.partial_scored += 1
            await self._finish(
                repo,
                replace(batch, partial_scoring_triggered=True),
                CJCompletionReason.BUDGET_EXHAUSTED,
                partial=True,
            )
            return
        if (now - batch.last_activity_at).total_seconds() < settings.stuck_batch_timeout_seconds:
            return
        report.detected += 1
        recoverable = batch.completed > 0 and (
            batch.state == BatchState.SCORING
            or recovery_decision(
                answered=batch.answered,
                planned=batch.budget,
                recovery_threshold_pct=settings.recovery_threshold_pct,
            )
        )
        if recoverable and success_rate(batch.completed, batch.failed) >= (
            settings.min_success_rate_threshold
        ):
            report.recovered += 1
            await self._finish(repo, batch, CJCompletionReason.FORCED_RECOVERY)
            return
        report.failed += 1
        await self._fail(
            repo,
            batch,
            ErrorCode.STUCK_BATCH,
            f"no activity for {settings.stuck_batch_timeout_seconds:g}s with "
            f"{batch.answered}/{batch.budget} comparisons answered",
            operation="monitor",
            details={"state": batch.state.value, "answered": batch.answered},
        )

    async def cancel(self, repo: BatchRepository, batch_id: UUID) -> BatchRecord:
        """Cancel a live batch (one failed event with code `cancelled`)."""
        batch = await repo.lock_batch(batch_id)
        if batch is None:
            raise BatchNotFound(f"no batch {batch_id}")
        if batch.state.is_terminal:
            raise BatchAlreadyFinished(f"batch {batch_id} is already {batch.state.value}")
        await self._fail(
            repo,
            batch,
            ErrorCode.CANCELLED,
            "batch cancelled by an operator",
            operation="cancel",
            state=BatchState.CANCELLED,
        )
        cancelled = await repo.get_batch(batch_id)
        assert cancelled is not None
        return cancelled


def _ago(now: datetime, seconds: float) -> datetime:
    from datetime import timedelta

    return now - timedelta(seconds=seconds)


def _validation_problem(request: CJAssessmentRequestV1) -> str | None:
    essays = [*request.essays_to_process, *request.anchors]
    if not request.essays_to_process:
        return "essays_to_process is empty"
    ids = [e.essay_id for e in essays]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        return f"duplicate essay_id values: {', '.join(duplicates[:10])}"
    empty = [e.essay_id for e in essays if not e.text_content.strip()]
    if empty:
        return f"essays with empty text_content: {', '.join(empty[:10])}"
    return None


def _fit_for_planning(n: int, answered: Sequence[PairOutcome]) -> tuple[np.ndarray, np.ndarray]:
    comparisons = Comparisons.from_lists(
        n,
        [p.essay_a for p in answered],
        [p.essay_b for p in answered],
        [p.winner == ComparisonWinner.ESSAY_A.value for p in answered],
    )
    fit = fit_bradley_terry(comparisons)
    errors = fit.standard_errors if fit.standard_errors is not None else np.ones(n)
    return fit.scores, errors
