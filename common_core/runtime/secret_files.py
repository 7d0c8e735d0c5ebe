"""Secrets kept in files (`*_FILE` settings, a Docker or Kubernetes secret mount): one way to
read them for every setting and client, so they all drop the same line end and refuse an
unreadable or empty file with the same message, naming the setting."""

from __future__ import annotations

from pathlib import Path


def read_secret_file(path: Path, setting: str) -> str:
    """The file's content without its trailing line end (a secret may hold other whitespace);
    a `ValueError` naming `setting` when it cannot be read or is empty."""
    try:
        secret = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ValueError(
            f"cannot read the secret file {setting}={path} (file not readable: {reason})"
        ) from None
    if not secret:
        raise ValueError(f"the secret file {setting}={path} is empty")
    return secret
