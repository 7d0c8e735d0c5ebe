"""Deterministic full-length essays for large-batch tests and benchmarks.

Each essay is about `words` words of ordinary student prose: sentences drawn (by a generator
seeded with the essay's number) from the sample essays of the LLM provider's tests, in
paragraphs of five to eight sentences. Same arguments, same essays, on every machine.
"""

from __future__ import annotations

import random
import re

from llm_provider_service.testing.sample_essays import (
    DEVELOPED_ON_TOPIC,
    INSTRUCTIONS,
    ORDINARY_ESSAYS,
)

__all__ = ["INSTRUCTIONS", "long_essay", "long_essays"]

_SENTENCES = sorted(
    {
        sentence.strip()
        for essay in [DEVELOPED_ON_TOPIC, *ORDINARY_ESSAYS]
        for sentence in re.split(r"(?<=[.!?])\s+", essay)
        if len(sentence.split()) >= 4
    }
)


def long_essay(number: int, words: int = 600) -> str:
    """Essay `number`: sentences until it reaches `words` words, in paragraphs."""
    rng = random.Random(number)
    paragraphs: list[list[str]] = [[]]
    length = rng.randint(5, 8)
    count = 0
    while count < words:
        if len(paragraphs[-1]) == length:
            paragraphs.append([])
            length = rng.randint(5, 8)
        sentence = rng.choice(_SENTENCES)
        paragraphs[-1].append(sentence)
        count += len(sentence.split())
    return "\n\n".join(" ".join(paragraph) for paragraph in paragraphs)


def long_essays(n: int, words: int = 600) -> dict[str, str]:
    """`n` essays keyed `essay-00000`…, each about `words` words."""
    return {f"essay-{i:05d}": long_essay(i, words) for i in range(n)}
