"""structlog JSON logging with the correlation id (and other ids) bound through contextvars.

Every line a service writes is one JSON object on stdout, whoever wrote it: our structlog loggers
and the stdlib loggers of the libraries (aiokafka, asyncpg, SQLAlchemy, hypercorn, Quart, asyncio,
alembic, ...) go through one root handler whose `structlog.stdlib.ProcessorFormatter` runs the
same processors (timestamp, level, logger, bound contextvars, key redaction). On that handler a
`RepeatThrottle` collapses a message repeated within an interval (a broker or database that stays
down) into one line with `repeats=N`.

Exceptions never become multi-line text: an outage error (`failures.is_transient`: connection
refused or reset, broker unavailable, database restarting) becomes `error_type` and
`describe_error(exc)`; any other keeps its type, safe message and frames inside the JSON object.

Library loggers stay at WARNING or above even when LOG_LEVEL=DEBUG: their debug output carries
request payloads (aiokafka's produce requests, the LLM SDKs' request options), that is essays.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import structlog

from common_core.runtime.error_text import describe_error, redact_error_text
from common_core.runtime.failures import is_transient
from common_core.runtime.log_throttle import REPEATS_ATTRIBUTE, RepeatThrottle

DEFAULT_REPEAT_INTERVAL_SECONDS = 30.0
"""How long repeats of one message are collapsed into a count (LOG_REPEAT_INTERVAL_SECONDS)."""

_REDACTED_KEYS = frozenset(
    {"api_key", "authorization", "password", "secret", "token", "text_content", "answer_text"}
)
# Keys whose string values are exception text: SQL, parameters and key values are cut out.
_ERROR_TEXT_KEYS = frozenset({"error", "reason"})
# Our code's loggers (a `python -m <service>` entry module logs as `__main__`).
_OWN_LOGGERS = ("common_core", "__main__")
_ACCESS_LOGGER = "hypercorn.access"
_MAX_FRAMES = 12
_MAX_CHAINED = 3

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _redact_secrets(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in list(event_dict):
        lowered = key.lower()
        if lowered in _REDACTED_KEYS:
            event_dict[key] = "[redacted]"
        elif lowered in _ERROR_TEXT_KEYS and isinstance(event_dict[key], str):
            event_dict[key] = redact_error_text(event_dict[key])
    return event_dict


def _redact_foreign_message(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # A library message is free text that may quote an exception (and so a statement).
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = redact_error_text(event)
    return event_dict


def _add_repeats(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    repeats = getattr(event_dict.get("_record"), REPEATS_ATTRIBUTE, None)
    if repeats is not None:
        event_dict[REPEATS_ATTRIBUTE] = repeats
    return event_dict


def _exc_info_of(value: object) -> ExcInfo | None:
    if value is True:
        value = sys.exc_info()[1]
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], BaseException):
        return value[0], value[1], value[2]
    return None


def exception_summary(exc: BaseException, *, depth: int = 0) -> dict[str, Any]:
    """An exception as JSON: type, safe message, innermost frames, cause; never locals or SQL."""
    summary: dict[str, Any] = {"type": type(exc).__name__, "message": describe_error(exc)}
    frames = traceback.extract_tb(exc.__traceback__)[-_MAX_FRAMES:]
    if frames:
        summary["frames"] = [f"{f.filename}:{f.lineno} {f.name}" for f in frames]
    if isinstance(exc, BaseExceptionGroup) and depth < _MAX_CHAINED:
        summary["exceptions"] = [
            exception_summary(inner, depth=depth + 1) for inner in exc.exceptions[:5]
        ]
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None and depth < _MAX_CHAINED:
        summary["cause"] = exception_summary(cause, depth=depth + 1)
    return summary


def _resolve_exc_info(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    # `exc_info=True` means "the exception being handled": take it now, while it is.
    if event_dict.get("exc_info") is True:
        event_dict["exc_info"] = sys.exc_info()[1]
    return event_dict


def _render_exception(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    exc_info = _exc_info_of(event_dict.pop("exc_info", None))
    event_dict.pop("stack_info", None)
    if exc_info is None:
        return event_dict
    exc = exc_info[1]
    if is_transient(exc):
        # An outage is expected: what failed is enough, a traceback would only repeat it.
        event_dict.setdefault("error_type", type(exc).__name__)
        event_dict.setdefault("error", describe_error(exc))
    else:
        event_dict["exception"] = exception_summary(exc)
    return event_dict


def _static(key: str, value: str) -> structlog.typing.Processor:
    def add(
        _logger: Any, _method: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event_dict.setdefault(key, value)
        return event_dict

    return add


def configure_logging(
    service_name: str,
    level: str = "INFO",
    *,
    json: bool = True,
    repeat_interval_seconds: float = DEFAULT_REPEAT_INTERVAL_SECONDS,
) -> None:
    """Send structlog and every stdlib logger through one handler: one JSON object per line."""
    log_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _static("service", service_name),
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _redact_foreign_message],
        processors=[
            _add_repeats,
            _render_exception,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    throttle = RepeatThrottle(repeat_interval_seconds)
    throttle.attach(handler)
    atexit.register(throttle.flush)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(log_level, logging.WARNING))
    for name in (*_OWN_LOGGERS, service_name.split(".", maxsplit=1)[0]):
        logging.getLogger(name).setLevel(log_level)
    # Access lines (method, path, status, time) are debugging detail.
    logging.getLogger(_ACCESS_LOGGER).setLevel(
        logging.INFO if log_level <= logging.DEBUG else logging.WARNING
    )
    logging.captureWarnings(True)
    _route_uncaught_exceptions()

    structlog.configure(
        processors=[
            *shared,
            _resolve_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def _route_uncaught_exceptions() -> None:
    """Uncaught and unraisable exceptions are logged as JSON instead of printed on stderr."""
    log = logging.getLogger("common_core.uncaught")

    def on_uncaught(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.critical("uncaught_exception", exc_info=(kind, value, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.error(
                "thread_exception",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    def on_unraisable(unraisable: Any) -> None:
        exc = unraisable.exc_value
        if exc is not None:
            log.warning(
                "unraisable_exception",
                exc_info=(type(exc), exc, unraisable.exc_traceback),
            )

    sys.excepthook = on_uncaught
    threading.excepthook = on_thread_exception
    sys.unraisablehook = on_unraisable


@contextmanager
def bound_log_context(**values: object) -> Iterator[None]:
    """Bind ids (correlation_id, event_id, batch_id, ...) to every log line inside the block."""
    clean = {k: str(v) for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield
