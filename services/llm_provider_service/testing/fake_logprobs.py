"""Log-probabilities in OpenAI's response shape (`choices[].logprobs`), for the fake server.

The answer text is cut into tokens (runs of word characters, of spaces, of other characters),
so a verdict letter in `{"winner": "A", ...}` is a token of its own, as with OpenAI's
tokenisers. Every token is the certain choice (log-probability 0) with a few unlikely
alternatives, except the verdict letter when the judge gives a probability: there "A" and "B"
share most of the mass as the probability says and two other tokens share the rest. A judge
without a probability is certain of its verdict (the other letter is not listed), as a
deterministic model would be.
"""

from __future__ import annotations

import math
import re
from typing import Any

from llm_provider_service.domain.verdict_probability import verdict_offset

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]+")
# The verdict letters' share of the mass at the verdict position; the rest goes to other tokens.
LETTER_MASS = 0.98
_UNLIKELY = (" ", "The", "\n", "Essay", "{")
_UNLIKELY_LOGPROB = -12.0


def choice_logprobs(content: str, probability: float | None, top_logprobs: int) -> dict[str, Any]:
    """The `logprobs` object of a choice whose text is `content`; `probability` is P(essay A
    is better) at the verdict letter (None: no probability, the judge is certain)."""
    verdict_at = verdict_offset(content)
    tokens = []
    start = 0
    for match in _TOKEN.finditer(content):
        token = match.group()
        if probability is not None and start == verdict_at and token in {"A", "B"}:
            tokens.append(_verdict_token(token, probability, top_logprobs))
        else:
            tokens.append(_certain_token(token, top_logprobs))
        start = match.end()
    return {"content": tokens, "refusal": None}


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "bytes": list(token.encode()), "logprob": logprob}


def _certain_token(token: str, top_logprobs: int) -> dict[str, Any]:
    others = [_entry(t, _UNLIKELY_LOGPROB - i) for i, t in enumerate(_UNLIKELY) if t != token]
    top = [_entry(token, 0.0), *others][:top_logprobs]
    return {**_entry(token, 0.0), "top_logprobs": top}


def _verdict_token(chosen: str, probability: float, top_logprobs: int) -> dict[str, Any]:
    rest = (1.0 - LETTER_MASS) / 2
    weights = {"A": LETTER_MASS * probability, "B": LETTER_MASS * (1 - probability)}
    weights.update({" A": rest, "Essay": rest})
    ranked = sorted(weights.items(), key=lambda item: -item[1])
    top = [_entry(token, _logprob(weight)) for token, weight in ranked]
    unlisted = (t for t in _UNLIKELY if t not in weights)
    top += [_entry(t, _UNLIKELY_LOGPROB - i) for i, t in enumerate(unlisted)]
    top = sorted(top, key=lambda entry: -float(entry["logprob"]))[:top_logprobs]
    return {**_entry(chosen, _logprob(weights[chosen])), "top_logprobs": top}


def _logprob(probability: float) -> float:
    return math.log(probability) if probability > 0 else -9999.0
