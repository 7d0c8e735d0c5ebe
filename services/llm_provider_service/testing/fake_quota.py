"""A provider-side token quota for the fake LLM server: a script that answers 429 when a call
would take the tokens it accepted in the last `window` seconds over `tokens`.

Tokens are estimated from the request as the service estimates them before a call (prompt
characters / 4 + the answer budget), so a test can state the quota in the service's terms."""

from __future__ import annotations

from typing import Any

from llm_provider_service.domain.prompt_caching import CHARS_PER_TOKEN
from llm_provider_service.testing.fake_llm_server import (
    FakeReply,
    ReceivedRequest,
    Script,
    always_good,
)


def estimated_tokens(body: dict[str, Any]) -> int:
    """The service's estimate of a chat call: its messages' characters / 4 + the answer budget."""
    text = "".join(str(m.get("content", "")) for m in body.get("messages", []))
    text += str(body.get("system", ""))
    budget = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return len(text) // CHARS_PER_TOKEN + int(budget)


class TokenQuota:
    """A Script enforcing a sliding-window token quota in front of another script."""

    def __init__(self, tokens: int, window: float, inner: Script = always_good) -> None:
        self.tokens = tokens
        self.window = window
        self.inner = inner
        self.accepted: list[tuple[float, int]] = []
        self.rejections: list[tuple[float, int]] = []

    def __call__(self, request: ReceivedRequest, index: int) -> FakeReply:
        """429 over quota, else the inner script's reply."""
        need = estimated_tokens(request.body)
        live = sum(amount for at, amount in self.accepted if at > request.at - self.window)
        if live + need > self.tokens:
            self.rejections.append((request.at, live))
            return FakeReply(status=429, headers={"retry-after": "1"})
        self.accepted.append((request.at, need))
        return self.inner(request, index)
