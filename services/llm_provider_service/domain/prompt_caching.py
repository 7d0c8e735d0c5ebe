"""Which parts of a prompt the provider may cache, and under which key.

The static prefix of a prompt (system prompt, instructions, rubric: `RenderedPrompt.static_prefix`)
is the same in every request of a CJ batch. Anthropic caches only up to an explicit
`cache_control` breakpoint (at most four per request), and only a prefix of at least the model's
minimum length (shorter ones are processed uncached, so a breakpoint there would only mislead);
OpenAI caches prompts of 1024 tokens or more by itself and routes requests with the same
`prompt_cache_key` to the same cache.

A comparison prompt has a second recurring prefix: the static part followed by essay A, which CJ
shows as essay A in about half of each essay's comparisons. A breakpoint after essay A costs
something certain and gains something likely (`recurring_breakpoint_pays`), so it is planned only
when the expected gain is larger.
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
# How often a request's essay-A prefix is expected to be read back from the cache. Each essay
# appears as essay A in about half of its comparisons, so in k appearances the first writes the
# prefix and the other k - 1 read it: (k - 1) / k. CJ gives every essay several comparisons
# (10 by default, so k is about 5 and the rate about 0.8); 0.5 (k = 2, a batch with about four
# comparisons per essay) is the conservative figure the decision is made with.
RECURRING_PREFIX_HIT_RATE = 0.5


@dataclass(frozen=True, slots=True)
class CacheTerms:
    """What caching costs for one model: the shortest cacheable prefix (tokens), and the prices
    of a cache write and of a cache read relative to an uncached input token (Anthropic 1.25
    and 0.1; OpenAI 1 and 0.5, since it charges no write premium)."""

    min_cacheable_tokens: int = DEFAULT_MIN_CACHEABLE_TOKENS
    write_ratio: float = 1.25
    read_ratio: float = 0.1


@dataclass(frozen=True, slots=True)
class CachePlan:
    """`breakpoints`: the lengths (characters of the user message, ascending) of the prefixes
    closed by a cache breakpoint (empty: none); `key`: the same for every request sharing the
    static prefix; `prefix_tokens`: the static prefix's estimated length."""

    breakpoints: tuple[int, ...]
    key: str
    prefix_tokens: int


def recurring_breakpoint_pays(terms: CacheTerms, hit_rate: float) -> bool:
    """Whether a breakpoint on a prefix read back at `hit_rate` lowers the expected cost.

    Per token of the prefix beyond the previous breakpoint: without it, 1 (uncached input);
    with it, `write_ratio` on a miss and `read_ratio` on a hit. It pays when
    `hit_rate * read + (1 - hit_rate) * write < 1`; at Anthropic's prices (1.25, 0.1) the
    break-even hit rate is 0.25 / 1.15, about 22 %."""
    expected = hit_rate * terms.read_ratio + (1 - hit_rate) * terms.write_ratio
    return expected < 1


def plan_prompt_cache(
    prompt: RenderedPrompt, *, terms: CacheTerms, extra_prefix_chars: int = 0
) -> CachePlan:
    """The cache plan of a prompt: a breakpoint after its static part when that part is long
    enough to be cached, and one after the recurring part (essay A) when that is long enough and
    pays in expectation. `extra_prefix_chars` counts static text an adapter adds to the prefix
    (the answer's JSON schema in the system prompt)."""
    prefix = prompt.static_prefix
    system_chars = len(prefix) - prompt.static_chars + extra_prefix_chars
    tokens = (len(prefix) + extra_prefix_chars) // CHARS_PER_TOKEN
    breakpoints: list[int] = []
    if prompt.static_chars > 0 and tokens >= terms.min_cacheable_tokens:
        breakpoints.append(prompt.static_chars)
    recurring = prompt.recurring_chars
    if (
        recurring > prompt.static_chars
        and (system_chars + recurring) // CHARS_PER_TOKEN >= terms.min_cacheable_tokens
        and recurring_breakpoint_pays(terms, RECURRING_PREFIX_HIT_RATE)
    ):
        breakpoints.append(recurring)
    # One key per static prefix: every request of a CJ batch shares it, and so do batches with
    # the same instructions and rubric, which share the cached prefix anyway.
    digest = hashlib.sha256(f"{prompt.version}\x00{prefix}".encode()).hexdigest()[:32]
    return CachePlan(tuple(breakpoints), f"huleedu-{digest}", tokens)
