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
