"""Exception text that is safe to log or to put in an event: no SQL, parameters or row values.

Driver and ORM messages quote what they were given: SQLAlchemy appends the statement and its
parameters (`[SQL: ...]`, `[parameters: ...]`), PostgreSQL's DETAIL repeats key values
(`Key (entity_ref)=(...) already exists`), pydantic's full text repeats the input. Every
exception that reaches a log line or an `error_detail` goes through `describe_error` first.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

MAX_ERROR_CHARS = 300

_SQLALCHEMY_TAIL = re.compile(r"\s*\[(SQL|parameters|Background on this error)[:\s].*", re.S)
_PG_DETAIL = re.compile(r"\s*DETAIL:.*", re.S)
_KEY_VALUES = re.compile(r"(Key \([^)]*\)=)\(.*?\)(?= |$)", re.S)
_QUOTED = re.compile(r"\"[^\"]{40,}\"|(?<!class )'[^']{40,}'")
# asyncpg quotes an argument it cannot encode (its repr, cut at 40 characters without a closing
# quote): `invalid input for query argument $1: 'text...' (reason)`.
_ASYNCPG_ARGUMENT = re.compile(r"(query argument \$\d+[^:]*: )(?:.{1,44}(?= \()|.*)", re.S)
# PostgreSQL quotes a value it cannot parse: `invalid input syntax for type integer: "text"`.
_PG_INPUT_VALUE = re.compile(r'(invalid input (?:syntax|value) for [^:"]+: )"(?:[^"]|"")*"')


def describe_error(exc: BaseException, *, max_chars: int = MAX_ERROR_CHARS) -> str:
    """`Type: message` with SQL, parameters, key values and long quoted values removed."""
    name = type(exc).__name__
    if isinstance(exc, ValidationError):
        # Its str() repeats the input; the field locations and messages are what matter.
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:3]
        ]
        return _cut(f"{name}: {'; '.join(parts)}", max_chars)
    return _cut(f"{name}: {redact_error_text(str(exc))}" if str(exc) else name, max_chars)


def redact_error_text(text: str) -> str:
    """Remove what a driver or ORM message quotes from the statement and its data."""
    text = _SQLALCHEMY_TAIL.sub("", text)
    text = _PG_DETAIL.sub("", text)
    text = _KEY_VALUES.sub(r"\1([redacted])", text)
    text = _ASYNCPG_ARGUMENT.sub(r"\1[redacted]", text)
    text = _PG_INPUT_VALUE.sub(r"\1[redacted]", text)
    text = _QUOTED.sub("[redacted]", text)
    return " ".join(text.split())


def _cut(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
