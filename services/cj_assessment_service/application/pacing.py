"""This instance's memory of what each live batch's computations cost (see domain/pacing.py).

Callbacks of one batch share a message key, so one instance handles a batch's answers; the
memory is per instance and lost on a restart, which costs one early check or top-up, nothing
else. It holds a bounded number of batches (the least recently used are forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from cj_assessment_service.application.ports import BatchRecord
from cj_assessment_service.domain.pacing import (
    DEFAULT_CHECK_SHARE,
    DEFAULT_PLANNING_SHARE,
    PlanningPace,
    answers_between_runs,
    planning_pace,
)

MAX_REMEMBERED_BATCHES = 1000


@dataclass
class _Costs:
    planning_seconds: float | None = None
    check_seconds: float | None = None
    last_checked: int | None = None


class BatchPacing:
    """Measured costs per batch, and the pace they give."""

    def __init__(
        self,
        *,
        min_refill_step: int,
        min_outstanding: int,
        check_share: float = DEFAULT_CHECK_SHARE,
        planning_share: float = DEFAULT_PLANNING_SHARE,
    ) -> None:
        self._min_refill_step = min_refill_step
        self._min_outstanding = min_outstanding
        self._check_share = check_share
        self._planning_share = planning_share
        self._costs: OrderedDict[UUID, _Costs] = OrderedDict()

    def _of(self, batch_id: UUID) -> _Costs:
        costs = self._costs.get(batch_id)
        if costs is None:
            costs = self._costs[batch_id] = _Costs()
            while len(self._costs) > MAX_REMEMBERED_BATCHES:
                self._costs.popitem(last=False)
        else:
            self._costs.move_to_end(batch_id)
        return costs

    @staticmethod
    def answer_rate(batch: BatchRecord, now: datetime) -> float:
        """Answers per second since the batch began."""
        elapsed = (now - batch.created_at).total_seconds()
        return batch.answered / elapsed if elapsed > 0 else 0.0

    def planning(self, batch: BatchRecord, now: datetime) -> PlanningPace:
        """The batch's refill step and in-flight target at its answer rate and planning cost."""
        return planning_pace(
            min_refill_step=self._min_refill_step,
            min_outstanding=self._min_outstanding,
            answer_rate=self.answer_rate(batch, now),
            planning_cost_seconds=self._of(batch.id).planning_seconds,
            share=self._planning_share,
        )

    def check_step(self, batch: BatchRecord, now: datetime, minimum: int) -> int:
        """Answers between two reliability checks of the batch."""
        return answers_between_runs(
            minimum=minimum,
            answer_rate=self.answer_rate(batch, now),
            cost_seconds=self._of(batch.id).check_seconds,
            share=self._check_share,
        )

    def last_checked(self, batch_id: UUID) -> int | None:
        """Answers the batch had at its last reliability check here (None: not checked yet)."""
        return self._of(batch_id).last_checked

    def record_check(self, batch_id: UUID, answered: int, seconds: float) -> None:
        """A reliability check ran on `answered` answers and took `seconds`."""
        costs = self._of(batch_id)
        costs.last_checked = answered
        costs.check_seconds = seconds

    def record_planning(self, batch_id: UUID, seconds: float) -> None:
        """A top-up (reading the pairs, fitting and planning) took `seconds`."""
        self._of(batch_id).planning_seconds = seconds

    def forget(self, batch_id: UUID) -> None:
        """The batch finished."""
        self._costs.pop(batch_id, None)
