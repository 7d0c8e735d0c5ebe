"""Which part of a prompt the provider may cache, and under which key.

The static prefix of a prompt (system prompt, instructions, rubric: `RenderedPrompt.static_prefix`)
is the same in every request of a CJ batch. Anthropic caches only up to an explicit
`cache_control` breakpoint, and only a prefix of at least the model's minimum length (shorter ones
are processed uncached, so a breakpoint there would only mislead); OpenAI caches prompts of 1024
tokens or more by itself and routes requests with the same `prompt_cache_key` to the same cache.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from llm_provider_service.domain.prompts import RenderedPrompt

# The providers' tokenizers average about four characters per English token; the limiter's
# estimate uses the same figure.
CHARS_PER_TOKEN = 4
# Both providers' common minimum, for a model whose own is not known.
DEFAULT_MIN_CACHEABLE_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class CachePlan:
    """`breakpoint_chars`: how many leading characters of the user message end the cached
    prefix (0: no breakpoint); `key`: the same for every request sharing the static prefix."""

    breakpoint_chars: int
    key: str
    prefix_tokens: int


def estimate_prompt_tokens(text: str) -> int:
    """A rough token count of a text (characters / 4)."""
    return len(text) // CHARS_PER_TOKEN


def plan_prompt_cache(
    prompt: RenderedPrompt, *, min_cacheable_tokens: int, extra_prefix_chars: int = 0
) -> CachePlan:
    """The cache plan of a prompt: a breakpoint after its static part when that part is long
    enough to be cached. `extra_prefix_chars` counts static text an adapter adds to the prefix
    (the answer's JSON schema in the system prompt)."""
    prefix = prompt.static_prefix
    tokens = (len(prefix) + extra_prefix_chars) // CHARS_PER_TOKEN
    cacheable = prompt.static_chars > 0 and tokens >= min_cacheable_tokens
    # One key per static prefix: every request of a CJ batch shares it, and so do batches with
    # the same instructions and rubric, which share the cached prefix anyway.
    digest = hashlib.sha256(f"{prompt.version}\x00{prefix}".encode()).hexdigest()[:32]
    return CachePlan(prompt.static_chars if cacheable else 0, f"huleedu-{digest}", tokens)
