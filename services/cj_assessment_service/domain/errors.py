"""The CJ service's error hierarchy, translated to HTTP statuses and event errors at the edges."""

from __future__ import annotations

from common_core.errors import ErrorCode, HuleEduError


class CJError(HuleEduError):
    """Base of the CJ assessment service's errors."""


class BatchNotFound(CJError):  # noqa: N818
    """No batch with that id (or for that upstream ref)."""

    code = ErrorCode.VALIDATION
    http_code = "batch_not_found"


class BatchNotCompleted(CJError):  # noqa: N818
    """Results were asked for a batch that has not completed."""

    code = ErrorCode.VALIDATION
    http_code = "batch_not_completed"


class BatchAlreadyFinished(CJError):  # noqa: N818
    """A cancel was asked for a batch in a terminal state."""

    code = ErrorCode.VALIDATION
    http_code = "batch_already_finished"


class InvalidEssaySet(CJError):  # noqa: N818
    """An essay-set upload with an essay outside the contract; `field` names it."""

    code = ErrorCode.VALIDATION
    http_code = "validation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class HumanJudgingNotConfigured(CJError):  # noqa: N818
    """Human judging was asked of an instance without a JUDGE_LINK_SECRET."""

    code = ErrorCode.VALIDATION
    http_code = "human_judging_not_configured"


class HumanJudgingConflict(CJError):  # noqa: N818
    """Human judging was asked for a batch that already has it."""

    code = ErrorCode.VALIDATION
    http_code = "human_judging_exists"


class InvalidDeadline(CJError):  # noqa: N818
    """A human judging deadline that has already passed, or lies beyond the longest allowed."""

    code = ErrorCode.VALIDATION
    http_code = "invalid_parameter"
    field = "deadline"


class JudgeRefusal(CJError):  # noqa: N818 - the base of the refusals below
    """A judge's action on the judging page that changes nothing (the page says why)."""

    code = ErrorCode.VALIDATION


class PairNotAssigned(JudgeRefusal):
    """No pair with that id among this judge's pairs of this batch (another judge's pair gets
    the same answer as an unknown one: the page reveals nothing of other judges)."""

    http_code = "pair_not_assigned"


class PairAlreadyJudged(JudgeRefusal):
    """The judge's verdict on the pair was already taken (a double submit)."""

    http_code = "already_judged"


class PairReleased(JudgeRefusal):
    """The pair was released at the deadline, or its batch has finished."""

    http_code = "released"


class JudgeNotInvited(JudgeRefusal):
    """A link naming a batch or judge that has no human judging (any more)."""

    http_code = "not_invited"
