"""structlog JSON logging with the correlation id (and other ids) bound through contextvars."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

_REDACTED_KEYS = frozenset(
    {"api_key", "authorization", "password", "secret", "token", "text_content", "answer_text"}
)


def _redact_secrets(
    _logger: Any, _method: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    for key in list(event_dict):
        if key.lower() in _REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(service_name: str, level: str = "INFO", *, json: bool = True) -> None:
    """Configure structlog and stdlib logging to emit one JSON object per line on stdout."""
    log_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service_name)
    logging.basicConfig(level=max(log_level, logging.WARNING), stream=sys.stderr, force=True)


@contextmanager
def bound_log_context(**values: object) -> Iterator[None]:
    """Bind ids (correlation_id, event_id, batch_id, ...) to every log line inside the block."""
    clean = {k: str(v) for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield
