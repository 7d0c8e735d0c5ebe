"""The client's error hierarchy; each error knows the exit code the CLI ends with."""

from __future__ import annotations

from common_core.errors import ErrorCode, HuleEduError
from common_core.events import CJAssessmentFailedV1

EXIT_BATCH_FAILED = 1
EXIT_NOTHING_MATCHED = 1
EXIT_TOPICS_DIFFER = 1
EXIT_ERASURE_REFUSED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_INTERRUPTED = 130


class ClientError(HuleEduError):
    """Base of every error the client reports as one clear line instead of a traceback."""

    exit_code: int = EXIT_USAGE


class InputError(ClientError):
    """The essays, prompt, anchors or intended order given on the command line are unusable."""

    code = ErrorCode.VALIDATION


class BrokerUnavailableError(ClientError):
    """The Kafka broker could not be reached within the connect timeout."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    retryable = True


class BrokerRefusedError(ClientError):
    """The broker refused the client: its certificate, the credentials or an ACL (the message
    names the KAFKA_* setting to fix)."""

    code = ErrorCode.AUTHENTICATION


class TopicNotFoundError(ClientError):
    """A topic named on the command line, or one a dead letter points to, is not on the broker."""

    code = ErrorCode.VALIDATION


class TopicsRefusedError(ClientError):
    """The broker refused to create a topic (no permission, replication factor too high)."""

    code = ErrorCode.VALIDATION


class NoDeadLettersMatchedError(ClientError):
    """`huleedu dlq replay` found no dead letter to republish."""

    code = ErrorCode.VALIDATION
    exit_code = EXIT_NOTHING_MATCHED


class StatusUnavailableError(ClientError):
    """The CJ service's HTTP API could not be reached or answered with an error."""

    code = ErrorCode.PROVIDER_UNAVAILABLE
    retryable = True


class CJBatchTimeoutError(ClientError):
    """Neither a completed nor a failed event arrived within the timeout."""

    code = ErrorCode.TIMEOUT
    exit_code = EXIT_TIMEOUT
    retryable = True


class CJBatchFailedError(ClientError):
    """The CJ service answered the batch with a failed event."""

    exit_code = EXIT_BATCH_FAILED

    def __init__(self, failed: CJAssessmentFailedV1) -> None:
        detail = failed.error_detail
        super().__init__(f"CJ batch {failed.entity_ref} failed: [{detail.code}] {detail.message}")
        self.failed = failed
        self.code = detail.code


class EssayUploadError(ClientError):
    """The CJ service refused (or could not take) an essay-set upload."""

    code = ErrorCode.VALIDATION


class ErasureFailedError(ClientError):
    """An erasure API refused the request (4xx), failed (5xx) or could not be reached."""

    code = ErrorCode.VALIDATION
    exit_code = EXIT_ERASURE_REFUSED


class JudgesRequestError(ClientError):
    """The CJ service's judge API refused the request (4xx), failed (5xx) or was unreachable."""

    code = ErrorCode.VALIDATION
    exit_code = EXIT_ERASURE_REFUSED
