"""configure_logging: every line of a process, ours or a library's, is one JSON object on stdout.

Each case runs a small script in a fresh interpreter, because logging set-up is process-wide
(root handler, excepthooks) and what matters is exactly what the process writes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

from common_core.testing.service_process import REPO_ROOT

MARKER = "Marker-Essay-Text-3f9c"
SECRET = "sk-marker-secret-3f9c"

_PRELUDE = """
import logging, sys, warnings
import structlog
from common_core.runtime.logging import configure_logging
"""


@dataclass(frozen=True)
class Output:
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    def events(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == event]


def _run(script: str) -> Output:
    completed = subprocess.run(
        [sys.executable, "-c", _PRELUDE + textwrap.dedent(script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Output(completed.stdout, completed.stderr)


class TestEveryLineIsJson:
    def test_library_loggers_share_the_processors_of_our_own(self) -> None:
        output = _run(
            """
            configure_logging("svc", "INFO")
            structlog.contextvars.bind_contextvars(correlation_id="c-1")
            structlog.get_logger("common_core.x").info("own_event", n=1)
            logging.getLogger("aiokafka").error("Unable connect to node with id %s: %s", 1, "x")
            logging.getLogger("sqlalchemy.pool.impl.AsyncAdaptedQueuePool").warning("pool")
            """
        )

        assert output.stderr == ""
        own, library, pool = output.lines
        assert own["event"] == "own_event"
        assert library["event"] == "Unable connect to node with id 1: x"
        for line, logger, level in (
            (own, "common_core.x", "info"),
            (library, "aiokafka", "error"),
            (pool, "sqlalchemy.pool.impl.AsyncAdaptedQueuePool", "warning"),
        ):
            assert line["logger"] == logger
            assert line["level"] == level
            assert line["service"] == "svc"
            assert line["correlation_id"] == "c-1"
            assert line["timestamp"].endswith("Z")

    def test_warnings_uncaught_exceptions_and_hypercorn_errors_are_json_too(self) -> None:
        output = _run(
            """
            configure_logging("svc", "INFO")
            warnings.warn("an old call")
            try:
                raise ValueError("boom")
            except ValueError:
                logging.getLogger("hypercorn.error").exception("Error in ASGI Framework")
            raise RuntimeError("crashed at the top")
            """
        )

        assert output.stderr == ""
        assert "Traceback" not in output.stdout
        warning, asgi, crash = output.lines
        assert warning["logger"] == "py.warnings"
        assert "an old call" in warning["event"]
        assert asgi["exception"]["type"] == "ValueError"
        assert asgi["exception"]["message"] == "ValueError: boom"
        assert any("<string>" in frame for frame in asgi["exception"]["frames"])
        assert crash["event"] == "uncaught_exception"
        assert crash["level"] == "critical"
        assert crash["exception"]["type"] == "RuntimeError"

    def test_library_debug_output_stays_off_at_debug_level(self) -> None:
        output = _run(
            f"""
            configure_logging("svc", "DEBUG")
            structlog.get_logger("svc.worker").debug("own_debug")
            structlog.get_logger("__main__").info("entry_module_info")
            logging.getLogger("svc.app").debug("own_stdlib_debug")
            logging.getLogger("aiokafka.conn").debug("Request 7: ProduceRequest {MARKER}")
            logging.getLogger("openai._base_client").debug("Request options: {MARKER}")
            logging.getLogger("hypercorn.access").info("GET /healthz 1.1 200")
            """
        )

        assert [line["event"] for line in output.lines] == [
            "own_debug",
            "entry_module_info",
            "own_stdlib_debug",
            "GET /healthz 1.1 200",
        ]


class TestNothingPrivateOrMultiLine:
    def test_outage_errors_carry_type_and_safe_text_without_traceback(self) -> None:
        output = _run(
            """
            configure_logging("svc", "INFO")
            try:
                raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
            except OSError:
                logging.getLogger("sqlalchemy.pool").exception("Exception during reset")
            try:
                raise ConnectionResetError(104, "reset by peer")
            except OSError as exc:
                structlog.get_logger("common_core.outbox").warning("publish_failed", exc_info=exc)
            """
        )

        pool, ours = output.lines
        assert pool["error_type"] == "ConnectionRefusedError"
        assert pool["error"].startswith("ConnectionRefusedError: [Errno 111] Connect call failed")
        assert ours["error_type"] == "ConnectionResetError"
        assert "exception" not in pool
        assert "exception" not in ours

    def test_sql_parameters_and_secret_keys_never_reach_a_line(self) -> None:
        output = _run(
            f"""
            from sqlalchemy.exc import IntegrityError
            configure_logging("svc", "DEBUG")
            error = IntegrityError(
                "INSERT INTO essays (text) VALUES ($1)", ("{MARKER}",), Exception("duplicate")
            )
            try:
                raise error
            except IntegrityError:
                structlog.get_logger("svc.repo").exception("insert_failed")
                logging.getLogger("quart.app").exception("Exception on request POST /x")
            structlog.get_logger("svc.repo").warning("failed", error=str(error))
            structlog.get_logger("svc.http").info(
                "configured", api_key="{SECRET}", answer_text="{MARKER}", text_content="{MARKER}"
            )
            """
        )

        assert len(output.lines) == 4
        assert MARKER not in output.stdout
        assert SECRET not in output.stdout
        assert output.events("insert_failed")[0]["exception"]["type"] == "IntegrityError"

    def test_a_repeated_warning_is_one_line_then_a_count_at_exit(self) -> None:
        output = _run(
            """
            configure_logging("svc", "INFO", repeat_interval_seconds=600)
            for attempt in range(50):
                logging.getLogger("aiokafka").error("Unable connect to node %s", attempt)
                structlog.get_logger("common_core.periodic").warning("pass_failed", n=attempt)
            """
        )

        assert [(line["event"], line.get("repeats")) for line in output.lines] == [
            ("Unable connect to node 0", None),
            ("pass_failed", None),
            ("Unable connect to node 49", 49),
            ("pass_failed", 49),
        ]
