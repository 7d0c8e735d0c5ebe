"""Registering a CJ assessment request: validate it, store the batch, request its opening pairs."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import numpy as np
import structlog

from cj_assessment_service import metrics
from cj_assessment_service.application.messages import BatchMessages
from cj_assessment_service.application.outcomes import BatchOutcomes
from cj_assessment_service.application.ports import (
    BatchRecord,
    EssayRecord,
    RequestSettings,
    UnitOfWork,
)
from cj_assessment_service.config import Settings
from cj_assessment_service.domain.batch import (
    BatchState,
    comparison_budget,
    effective_budget,
    plan_opening_pairs,
    transition,
)
from cj_assessment_service.domain.human_pairs import deadline_problem
from common_core.errors import ErrorCode
from common_core.events.cj import CJAssessmentRequestV1, CJCompletionReason
from common_core.events.envelope import EventEnvelope
from common_core.events.llm import LLMConfig
from common_core.runtime.compute import ComputePool

log = structlog.get_logger(__name__)


class RequestUseCases:
    """Turns a request event into a batch (or a failed one), in the caller's transaction."""

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

    async def handle_request(
        self, uow: UnitOfWork, envelope: EventEnvelope[CJAssessmentRequestV1]
    ) -> UUID | None:
        """Create (and start) a batch for a request; None for a duplicate request."""
        request = envelope.data
        if not await uow.batches.claim_request(envelope.event_id):
            self._count_request(uow, "duplicate")
            return None
        if await uow.batches.live_id(request.entity_ref) is not None:
            self._count_request(uow, "duplicate")
            return None
        now = datetime.now(UTC)
        essays, set_problem = await _essays_to_rank(uow, request, now)
        essay_count = len(essays)
        essays += [
            EssayRecord(len(essays) + i, a.essay_id, a.text_content, a.grade)
            for i, a in enumerate(request.anchors)
        ]
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
            essay_count=essay_count,
            budget=budget,
            request_settings=self._request_settings(request),
            created_at=now,
            updated_at=now,
            last_activity_at=now,
            essay_set_id=request.essay_set.essay_set_id if request.essay_set else None,
            human_judging=request.human_judging,
            human_deadline=request.human_judging.deadline if request.human_judging else None,
        )
        problem = (
            set_problem
            or _validation_problem(essays, essay_count)
            or _human_judging_problem(request, now, self._settings.human_deadline_max_days)
        )
        # An invalid request is kept as a FAILED batch (visible over HTTP) without its essays.
        await uow.batches.add(batch)
        if problem is not None:
            self._count_request(uow, "invalid")
            await self._outcomes.fail(
                uow,
                batch,
                ErrorCode.VALIDATION,
                problem.message,
                operation="validate",
                details={"field": problem.field} if problem.field else None,
            )
            return batch.id
        await uow.essays.add(batch.id, essays)
        if essay_count < 2:
            self._count_request(uow, "insufficient")
            await self._outcomes.finish(uow, batch, CJCompletionReason.INSUFFICIENT_ESSAYS)
            return batch.id
        self._count_request(uow, "accepted")
        pairs = await self._compute.run(
            "opening_pairs",
            batch.id,
            functools.partial(
                plan_opening_pairs,
                comparisons_per_essay=self._settings.default_comparisons_per_essay,
                max_pairs_per_step=self._settings.max_pairs_per_step,
                rng=self._rng(),
            ),
            n_total,
            budget,
        )
        state = transition(batch.state, BatchState.GENERATING_PAIRS)
        await self._messages.request_pairs(uow, replace(batch, state=state), essays, pairs, step=1)
        await uow.batches.record_wave(
            batch.id,
            state=transition(state, BatchState.WAITING_CALLBACKS),
            planned=len(pairs),
            waves=1,
        )
        log.info("cj_batch_started", batch_id=str(batch.id), essays=n_total, pairs=len(pairs))
        return batch.id

    def _count_request(self, uow: UnitOfWork, outcome: str) -> None:
        uow.after_commit(lambda: metrics.REQUESTS_HANDLED.labels(outcome=outcome).inc())

    def _request_settings(self, request: CJAssessmentRequestV1) -> RequestSettings:
        overrides = request.llm_config_overrides or LLMConfig()
        config = LLMConfig(
            provider=overrides.provider or self._settings.default_llm_provider,
            model=overrides.model or self._settings.default_llm_model,
            temperature=overrides.temperature,
            max_tokens=overrides.max_tokens,
            mode=overrides.mode,
        )
        return RequestSettings(
            language=request.language,
            course_code=request.course_code,
            essay_instructions=request.essay_instructions,
            judge_rubric=request.judge_rubric,
            llm_config=config,
            max_comparisons=request.max_comparisons,
            target_reliability=(
                request.target_reliability
                if request.target_reliability is not None
                else self._settings.default_target_reliability
            ),
        )


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why a request cannot be processed, and the request field at fault when there is one."""

    message: str
    field: str | None = None


async def _essays_to_rank(
    uow: UnitOfWork, request: CJAssessmentRequestV1, now: datetime
) -> tuple[list[EssayRecord], _Problem | None]:
    """The essays to rank, inline or from the uploaded set the request names (claim check)."""
    reference = request.essay_set
    if reference is None:
        inline = [
            EssayRecord(i, e.essay_id, e.text_content)
            for i, e in enumerate(request.essays_to_process)
        ]
        return inline, None
    if request.essays_to_process:
        return [], _Problem(
            "give the essays either inline (essays_to_process) or as essay_set, not both",
            "essay_set",
        )
    stored = await uow.essay_sets.get(reference.essay_set_id, now)
    if stored is None:
        return [], _Problem(
            f"essay_set.essay_set_id {reference.essay_set_id} is unknown or has expired "
            "(upload the essays again: POST /api/v1/essay-sets)",
            "essay_set.essay_set_id",
        )
    if reference.content_sha256 is not None and reference.content_sha256 != stored.content_sha256:
        return [], _Problem(
            "essay_set.content_sha256 does not match the stored essay set",
            "essay_set.content_sha256",
        )
    return stored.essays, None


def _human_judging_problem(
    request: CJAssessmentRequestV1, now: datetime, max_days: float
) -> _Problem | None:
    human = request.human_judging
    problem = deadline_problem(human.deadline, now, max_days) if human is not None else None
    if problem is not None:
        return _Problem(f"human_judging.deadline {problem}", "human_judging.deadline")
    return None


def _validation_problem(essays: list[EssayRecord], essay_count: int) -> _Problem | None:
    if essay_count == 0:
        return _Problem("essays_to_process is empty", "essays_to_process")
    ids = Counter(e.essay_id for e in essays)
    duplicates = sorted(i for i, n in ids.items() if n > 1)
    if duplicates:
        return _Problem(f"duplicate essay_id values: {', '.join(duplicates[:10])}")
    empty = [e.essay_id for e in essays if not e.text_content.strip()]
    if empty:
        return _Problem(f"essays with empty text_content: {', '.join(empty[:10])}")
    return None
