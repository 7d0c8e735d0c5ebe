"""What a service's HTTP error answer says, as one line of the client's messages."""

from __future__ import annotations

import httpx


def error_reason(response: httpx.Response) -> str:
    """`: <code>: <message> (field <f>)` from the services' JSON error body, when there is one."""
    try:
        error = response.json()
    except ValueError:
        return ""
    if not isinstance(error, dict) or "message" not in error:
        return ""
    field = f" (field {error['field']})" if error.get("field") else ""
    code = f"{error['code']}: " if error.get("code") else ""
    return f": {code}{error['message']}{field}"
