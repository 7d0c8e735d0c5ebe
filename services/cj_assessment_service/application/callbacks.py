"""Recording comparison results: answers, re-requests after retryable errors, and what follows
new answers (fail, finish, plan more pairs to keep the target in flight, or wait)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np
import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.messages import BatchMessages
from cj_assessment_service.application.outcomes import BatchOutcomes
from cj_assessment_service.application.pacing import BatchPacing
from cj_assessment_service.application.ports import (
    BatchRecord,
    HedgeCall,
    NewPair,
    PairAnswer,
    PairOutcomes,
    PairRecord,
    PairReissue,
    UnitOfWork,
)
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import (
    BatchDecision,
    BatchState,
    PairStatus,
    decide_after_answers,
    partial_scoring_due,
    plan_from_answers,
    reliability_stop_applies,
    top_up_size,
    transition,
)
from cj_assessment_service.domain.human_pairs import (
    assign_judges,
    human_pair_count,
    plan_human_pairs_from_answers,
)
from cj_assessment_service.domain.pair_planning import OrderedPair, total_pairs
from cj_assessment_service.domain.stopping import StopRule, posterior_reliability
from common_core.events.cj import CJCompletionReason
from common_core.events.llm import ComparisonWinner, JudgeKind, LLMComparisonResultV1
from common_core.runtime.compute import ComputePool

log = structlog.get_logger(__name__)

# `cj_pairs.judge_kind` of a pair given to a person.
HUMAN_PAIR = JudgeKind.HUMAN.value


def _judged_by_assignee(result: LLMComparisonResultV1, pair: PairRecord) -> bool:
    """True when the answer comes from the judge the pair was given to: the person for a
    person's pair, the AI (no human judge kind) for the AI's."""
    if pair.judge_kind == HUMAN_PAIR:
        return result.judge_kind == JudgeKind.HUMAN and result.judge_id == pair.judge_id
    return result.judge_kind != JudgeKind.HUMAN


@dataclass
class _BatchChanges:
    completed: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    judges: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    human_answered: int = 0

    def add_usage(self, result: LLMComparisonResultV1, *, verdict: bool = True) -> None:
        """Count an answer's tokens and cost (errors and losing hedge copies cost too), and its
        judge when it is the pair's verdict."""
        usage = result.usage
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cached_prompt_tokens += usage.cached_prompt_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        if usage.estimated_cost_usd is not None:
            self.cost_usd += usage.estimated_cost_usd
        elif usage.prompt_tokens or usage.completion_tokens:
            self.unpriced += 1  # tokens were spent at an unknown price
        if verdict and result.error_detail is None:
            self.judges[(result.provider, result.model, result.prompt_version)] += 1


def _merge_judges(
    stored: list[dict[str, Any]], new: Counter[tuple[str, str, str | None]]
) -> list[dict[str, Any]]:
    """The stored judge counts plus the new ones, as stored (JSON)."""
    counts: Counter[tuple[str, str, str | None]] = Counter(new)
    for judge in stored:
        counts[(judge["provider"], judge["model"], judge.get("prompt_version"))] += int(
            judge.get("comparisons", 0)
        )
    return [
        {"provider": p, "model": m, "prompt_version": v, "comparisons": n}
        for (p, m, v), n in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    ]


class _HedgeCopies:
    """The request ids of hedged pairs in a fetched batch of callbacks: which copy decides its
    pair (the first verdict, or the last error), and which only cost tokens."""

    def __init__(self, calls: dict[UUID, list[HedgeCall]]) -> None:
        self._calls = calls
        self._ids = {c.request_id for copies in calls.values() for c in copies}
        self._unanswered = {c.request_id for cs in calls.values() for c in cs if not c.answered}
        self.answered: list[UUID] = []

    def __contains__(self, request_id: UUID) -> bool:
        return request_id in self._ids

    def decides(
        self,
        result: LLMComparisonResultV1,
        pair: PairRecord,
        *,
        batches: dict[UUID, BatchRecord],
        handled: set[UUID],
        changes: dict[UUID, _BatchChanges],
        report: CallbackReport,
    ) -> bool:
        """True when this copy's answer is the pair's; else it is counted here and dropped."""
        if result.request_id not in self._unanswered:
            report.duplicates += 1  # a redelivered callback of a copy
            return False
        self._unanswered.discard(result.request_id)
        self.answered.append(result.request_id)
        if batches[pair.batch_id].state.is_terminal:
            report.late += 1
            return False
        first = pair.status == PairStatus.PENDING and pair.id not in handled
        others_out = any(c.request_id in self._unanswered for c in self._calls[pair.id])
        if first and (result.error_detail is None or not others_out):
            return True
        # The losing copy, or an error while the other copy may still answer: it cost tokens
        # (resource usage counts every call) and changes nothing else.
        changes.setdefault(pair.batch_id, _BatchChanges()).add_usage(result, verdict=False)
        if first:
            report.hedge_errors += 1
        else:
            report.hedge_losers += 1
        return False


@dataclass
class CallbackReport:
    """What one fetched batch of callbacks did (for metrics and tests)."""

    recorded: int = 0
    failed: int = 0
    retried: int = 0
    duplicates: int = 0
    late: int = 0
    orphans: int = 0
    hedge_losers: int = 0
    hedge_errors: int = 0
    latencies: list[float] = field(default_factory=list)


class CallbackUseCases:
    """Records fetched batches of comparison results, in the caller's transaction."""

    def __init__(
        self,
        settings: Settings,
        messages: BatchMessages,
        outcomes: BatchOutcomes,
        rng: Callable[[], np.random.Generator],
        compute: ComputePool,
    ) -> None:
        self._settings = settings
        self._messages = messages
        self._outcomes = outcomes
        self._rng = rng
        self._compute = compute
        self._pacing = BatchPacing(
            min_refill_step=settings.refit_every_answers,
            min_outstanding=settings.target_outstanding_comparisons,
            check_share=settings.reliability_check_share,
            planning_share=settings.planning_share,
        )

    async def record_results(
        self,
        uow: UnitOfWork,
        results: Sequence[LLMComparisonResultV1],
    ) -> CallbackReport:
        """Record a fetched batch of comparison results in one transaction."""
        report = CallbackReport()
        request_ids = list(dict.fromkeys(r.request_id for r in results))
        batches = await uow.batches.lock_for_requests(request_ids)
        # Read pairs only after the batch locks: every writer of a batch's pairs holds it.
        pairs = await uow.pairs.by_request(request_ids) if batches else {}
        report.orphans = sum(1 for r in results if r.request_id not in pairs)
        if pairs:
            now = datetime.now(UTC)
            changes, reissues = await self._apply_results(
                uow, results, pairs=pairs, batches=batches, report=report, now=now
            )
            if reissues:
                await self._reissue(uow, reissues, pairs, batches, now)
            for batch_id, delta in changes.items():
                await self._update_counters(uow, batches[batch_id], delta, now)
        self._report_callbacks(uow, report)
        return report

    async def _apply_results(
        self,
        uow: UnitOfWork,
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
        # Hedged pairs (README "Hedged requests") have two request ids, each answered once.
        copies = _HedgeCopies(
            await uow.hedges.calls(list(pairs))
            if any(batch.hedged for batch in batches.values())
            else {}
        )
        for result in results:
            pair = pairs.get(result.request_id)
            if pair is None:
                continue
            if not _judged_by_assignee(result, pair):
                # A person's pair answered by anyone but that person, or a "human" verdict for
                # a pair the AI was asked: not an answer to this pair.
                report.orphans += 1
                continue
            if result.request_id in copies:
                if not copies.decides(
                    result, pair, batches=batches, handled=handled, changes=changes, report=report
                ):
                    continue
            elif pair.status != PairStatus.PENDING or pair.id in handled:
                report.duplicates += 1
                continue
            handled.add(pair.id)
            if batches[pair.batch_id].state.is_terminal:
                report.late += 1
                continue
            delta = changes.setdefault(pair.batch_id, _BatchChanges())
            delta.add_usage(result)
            human = pair.judge_kind == HUMAN_PAIR
            if human:
                delta.human_answered += 1
            report.latencies.append(max(0.0, (now - pair.requested_at).total_seconds()))
            # Who answered an AI pair; a person's pair keeps the person it was given to.
            judge = None if human else f"{result.provider}:{result.model}"
            error = result.error_detail
            if error is None:
                winner = (result.winner or ComparisonWinner.ESSAY_A).value
                answers.append(
                    PairAnswer(
                        pair.id,
                        PairStatus.COMPLETED,
                        winner,
                        None,
                        result.probability_essay_a_better,
                        judge_id=judge,
                    )
                )
                delta.completed += 1
                report.recorded += 1
            elif (
                not human
                and error.retryable
                and pair.attempts <= self._settings.max_retries_per_pair
            ):
                reissues.append(PairReissue(pair.id, uuid4()))
                report.retried += 1
            else:
                answers.append(
                    PairAnswer(pair.id, PairStatus.FAILED, None, error.code.value, judge_id=judge)
                )
                delta.failed += 1
                report.failed += 1
        await uow.pairs.save_answers(answers, now)
        await uow.hedges.mark_answered(copies.answered, now)
        return changes, reissues

    async def _reissue(
        self,
        uow: UnitOfWork,
        reissues: list[PairReissue],
        pairs: dict[UUID, PairRecord],
        batches: dict[UUID, BatchRecord],
        now: datetime,
    ) -> None:
        """Ask pairs again under new request ids after retryable errors."""
        await uow.pairs.reissue(reissues, now)
        by_id = {p.id: p for p in pairs.values()}
        by_batch: dict[UUID, list[tuple[PairRecord, UUID]]] = {}
        for reissue in reissues:
            pair = by_id[reissue.pair_id]
            by_batch.setdefault(pair.batch_id, []).append((pair, reissue.request_id))
        for batch_id, asked in by_batch.items():
            await self._messages.ask_again(uow, batches[batch_id], asked)

    async def _update_counters(
        self, uow: UnitOfWork, before: BatchRecord, delta: _BatchChanges, now: datetime
    ) -> None:
        batch = replace(
            before,
            completed=before.completed + delta.completed,
            failed=before.failed + delta.failed,
            prompt_tokens=before.prompt_tokens + delta.prompt_tokens,
            completion_tokens=before.completion_tokens + delta.completion_tokens,
            cached_prompt_tokens=before.cached_prompt_tokens + delta.cached_prompt_tokens,
            cache_write_tokens=before.cache_write_tokens + delta.cache_write_tokens,
            estimated_cost_usd=before.estimated_cost_usd + delta.cost_usd,
            unpriced_answers=before.unpriced_answers + delta.unpriced,
            judges=_merge_judges(before.judges, delta.judges) if delta.judges else before.judges,
            last_activity_at=now,
            human_answered=before.human_answered + delta.human_answered,
        )
        if batch.threshold_reached_at is None and partial_scoring_due(
            answered=batch.answered,
            budget=batch.budget,
            threshold_pct=self._settings.completion_threshold_pct,
        ):
            batch = replace(batch, threshold_reached_at=now)
        await uow.batches.record_answers(batch)
        if batch.state == BatchState.WAITING_CALLBACKS:
            await self._advance(uow, before, batch)

    def _report_callbacks(self, uow: UnitOfWork, report: CallbackReport) -> None:
        def record() -> None:
            for outcome, count in (
                ("recorded", report.recorded),
                ("failed", report.failed),
                ("retried", report.retried),
                ("duplicate", report.duplicates),
                ("late", report.late),
                ("orphan", report.orphans),
                ("hedge_loser", report.hedge_losers),
                ("hedge_error", report.hedge_errors),
            ):
                if count:
                    metrics.CALLBACKS_PROCESSED.labels(outcome=outcome).inc(count)
            if report.orphans:
                metrics.ORPHAN_CALLBACKS.inc(report.orphans)
            for latency in report.latencies:
                metrics.CALLBACK_LATENCY.observe(latency)

        uow.after_commit(record)

    # ---------------------------------------------------------------------------------- planning

    async def _advance(self, uow: UnitOfWork, before: BatchRecord, batch: BatchRecord) -> None:
        """After new answers, under the batch lock: fail, finish, plan more pairs, or wait.

        Planning runs in the transaction that recorded the answers and holds the batch row lock
        (`batches.lock_for_requests`), so two instances never plan for one batch at once; the
        orientation key (batch, essay A, essay B) is unique in the database as well. The fits,
        the reliability estimate and the planning itself run on the compute pool, never on the
        event loop, and as often as their measured cost allows (domain/pacing.py).
        """
        settings = self._settings
        now = datetime.now(UTC)
        n = await uow.essays.count(batch.id)  # anchors included: they take part in the fit
        with_judges = batch.human_judging is not None
        pairs: PairOutcomes | None = None
        human_count = self._human_pairs_due(batch, n, now)
        if human_count:
            pairs = await uow.pairs.outcomes(batch.id, with_judges=True)
            batch, pairs = await self._give_pairs_to_people(uow, batch, n, pairs, human_count)
        rule = self._stop_rule(batch, n, now)
        # The people's last verdict (or their release) may be what a reached target waited for.
        people_done = before.human_pending > 0 and batch.human_pending == 0
        check = (people_done and rule.target_reliability is not None) or rule.check_due(
            n_essays=n,
            answered_now=batch.answered,
            last_checked=self._pacing.last_checked(batch.id),
        )
        pace = self._pacing.planning(batch, now)
        count = top_up_size(
            budget=batch.comparison_limit,
            planned=batch.planned,
            pending=batch.ai_pending,  # the people's pairs are not the AI's to keep in flight
            target_outstanding=pace.target_outstanding,
            refill_step=pace.refill_step,
        )
        count = min(count, settings.max_pairs_per_step)
        decision = self._decide(batch, n, reliability_target_met=False, planning=count > 0)
        if not (check or count or decision.finish or decision.fail_low_success):
            return  # answers still in flight and nothing to plan: no need to read the pairs
        started = time.perf_counter()
        if pairs is None:
            pairs = await uow.pairs.outcomes(batch.id, with_judges=with_judges)
        check_seconds = 0.0
        if check and not decision.fail_low_success:
            check_started = time.perf_counter()
            reliability = await self._compute.run(
                "reliability_check", batch.id, reliability_of_answers, n, pairs
            )
            check_seconds = time.perf_counter() - check_started
            self._after_check(uow, batch, reliability, check_seconds)
            met = rule.met(reliability)
            if met and batch.human_pending > 0:
                # The target is reached but people are still judging: wait for them (or their
                # deadline) instead of spending more of the AI's budget.
                return
            decision = self._decide(batch, n, reliability_target_met=met, planning=count > 0)
        if decision.fail_low_success:
            await self._outcomes.fail_low_success(uow, batch)
            self._forget_after_commit(uow, batch.id)
            return
        if decision.finish is not None:
            await self._outcomes.finish(uow, batch, decision.finish, pairs=pairs)
            self._forget_after_commit(uow, batch.id)
            return
        if count == 0:
            return
        planned = await self._compute.run(
            "planning",
            batch.id,
            plan_more_pairs,
            n,
            pairs,
            count,
            self._rng(),
            settings.reask_uncertainty_band,
        )
        planning_seconds = time.perf_counter() - started - check_seconds
        uow.after_commit(lambda: self._pacing.record_planning(batch.id, planning_seconds))
        if not planned:
            if batch.pending == 0:  # every orientation has been asked and answered
                await self._finish_exhausted(uow, batch, n, pairs)
            return
        generating = replace(batch, state=transition(batch.state, BatchState.GENERATING_PAIRS))
        essays = await uow.essays.get(batch.id, positions={i for pair in planned for i in pair})
        await self._messages.request_pairs(uow, generating, essays, planned, step=batch.waves + 1)
        await uow.batches.record_wave(
            batch.id,
            state=transition(generating.state, BatchState.WAITING_CALLBACKS),
            planned=batch.planned + len(planned),
            waves=batch.waves + 1,
        )
        log.debug(
            "cj_pairs_planned",
            batch_id=str(batch.id),
            step=batch.waves + 1,
            pairs=len(planned),
            in_flight=batch.pending + len(planned),
            refill_step=pace.refill_step,
        )

    def _stop_rule(self, batch: BatchRecord, n: int, now: datetime) -> StopRule:
        settings = self._settings
        return StopRule(
            target_reliability=(
                batch.request_settings.target_reliability
                if reliability_stop_applies(n, batch.budget)
                else None
            ),
            min_comparisons_per_essay=settings.min_comparisons_per_essay_before_stop,
            check_every=self._pacing.check_step(
                batch, now, minimum=math.ceil(settings.reliability_check_step * n / 2)
            ),
        )

    async def _finish_exhausted(
        self, uow: UnitOfWork, batch: BatchRecord, n: int, pairs: PairOutcomes
    ) -> None:
        """Every orientation has been asked and answered: finish (or fail on a low success)."""
        decision = self._decide(batch, n, reliability_target_met=False, exhausted=True)
        if decision.fail_low_success:
            await self._outcomes.fail_low_success(uow, batch)
        else:
            await self._outcomes.finish(
                uow, batch, decision.finish or CJCompletionReason.ALL_PAIRS_COMPARED, pairs=pairs
            )
        self._forget_after_commit(uow, batch.id)

    def _human_pairs_due(self, batch: BatchRecord, n: int, now: datetime) -> int:
        """How many pairs to give the batch's people now: their whole share, once, before their
        deadline, as soon as the AI has answered about as many pairs as there are essays (so
        its fit can tell which pairs are close); 0 otherwise."""
        human = batch.human_judging
        if human is None or batch.human_planned > 0 or batch.human_released > 0:
            return 0
        if batch.human_deadline is None or batch.human_deadline <= now:
            return 0
        if batch.completed < min(n, batch.budget) or batch.planned >= 2 * total_pairs(n):
            return 0
        return human_pair_count(batch.budget, human.share)

    async def _give_pairs_to_people(
        self, uow: UnitOfWork, batch: BatchRecord, n: int, pairs: PairOutcomes, count: int
    ) -> tuple[BatchRecord, PairOutcomes]:
        """Choose the people's pairs from the AI's answers so far, give each to one judge in
        turn and store them (no request goes to the AI); the batch and its pairs after."""
        human = batch.human_judging
        assert human is not None
        chosen = await self._compute.run(
            "human_planning", batch.id, plan_human_pairs, n, pairs, count, self._rng()
        )
        if not chosen:
            return batch, pairs
        judges = assign_judges(chosen, [j.judge_id for j in human.judges])
        new_pairs = [
            NewPair(uuid4(), a, b, uuid4(), judge_kind=HUMAN_PAIR, judge_id=judge)
            for (a, b), judge in zip(chosen, judges, strict=True)
        ]
        await uow.pairs.add(batch.id, batch.waves, new_pairs)
        batch = replace(batch, planned=batch.planned + len(new_pairs), human_planned=len(new_pairs))
        await uow.batches.record_human_plan(
            batch.id, planned=batch.planned, human_planned=batch.human_planned
        )
        uow.after_commit(lambda: metrics.HUMAN_PAIRS.labels(outcome="assigned").inc(len(new_pairs)))
        log.info(
            "cj_pairs_given_to_people",
            batch_id=str(batch.id),
            pairs=len(new_pairs),
            judges=len(human.judges),
        )
        return batch, pairs.with_pending(chosen, human=True, judges=judges)

    async def release_due_human_pairs(self, uow: UnitOfWork) -> int:
        """Release the people's unjudged pairs of batches past their deadline, then carry on
        with each batch as after new answers (plan the freed budget for the AI, or finish)."""
        now = datetime.now(UTC)
        total = 0
        for batch in await uow.batches.lock_human_deadline_due(
            now, self._settings.monitor_batch_limit
        ):
            released = await uow.pairs.release_human_pairs(batch.id, now)
            if not released:
                continue  # only submitted verdicts are outstanding: they are on their way
            after = replace(
                batch,
                planned=batch.planned - released,
                human_released=batch.human_released + released,
                last_activity_at=now,
            )
            await uow.batches.record_release(after)
            total += released
            log.info("cj_human_pairs_released", batch_id=str(batch.id), pairs=released)
            if after.state == BatchState.WAITING_CALLBACKS:
                await self._advance(uow, batch, after)
        if total:
            uow.after_commit(lambda: metrics.HUMAN_PAIRS.labels(outcome="released").inc(total))
        return total

    def _after_check(
        self, uow: UnitOfWork, batch: BatchRecord, reliability: float | None, seconds: float
    ) -> None:
        answered = batch.answered

        def record() -> None:
            self._pacing.record_check(batch.id, answered, seconds)
            if reliability is not None:
                metrics.STOP_RELIABILITY.observe(reliability)

        uow.after_commit(record)

    def _forget_after_commit(self, uow: UnitOfWork, batch_id: UUID) -> None:
        uow.after_commit(lambda: self._pacing.forget(batch_id))

    def _decide(
        self,
        batch: BatchRecord,
        n: int,
        *,
        reliability_target_met: bool,
        planning: bool = False,
        exhausted: bool = False,
    ) -> BatchDecision:
        return decide_after_answers(
            n_essays=n,
            budget=batch.comparison_limit,
            planned=batch.planned,
            completed=batch.completed,
            failed=batch.failed,
            min_success_rate=self._settings.min_success_rate_threshold,
            reliability_target_met=reliability_target_met,
            planning_more=planning,
            nothing_left_to_plan=exhausted,
        )


def reliability_of_answers(n: int, pairs: PairOutcomes) -> float | None:
    """The stop rule's posterior reliability of a batch's answers (run on the compute pool)."""
    return posterior_reliability(pairs.answered(n))


def plan_human_pairs(
    n: int, pairs: PairOutcomes, count: int, rng: np.random.Generator
) -> list[OrderedPair]:
    """Up to `count` pairs for the batch's people from a fit of the answers so far (run on the
    compute pool)."""
    return plan_human_pairs_from_answers(pairs.answered(n), pairs.asked(), count, rng=rng)


def plan_more_pairs(
    n: int, pairs: PairOutcomes, count: int, rng: np.random.Generator, reask_band: float
) -> list[OrderedPair]:
    """Up to `count` adaptive pairs from a fit of the answers so far (soft verdicts weighed),
    given every pair asked (run on the compute pool)."""
    return plan_from_answers(
        pairs.answered(n), pairs.asked(), count, rng=rng, reask_band=reask_band
    )
