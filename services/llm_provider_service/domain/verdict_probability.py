"""The judge's probability that essay A is better, read from the verdict token's log-probabilities.

A comparison answer (prompt `comparison_v2`) starts with its verdict: `{"winner": "A", ...}`,
the letter a single token (OpenAI's strict structured outputs keep the schema's key order). So
the verdict sits at a known character of the answer text, and the answer token that covers that
character, with the top alternatives the provider lists for it (`top_logprobs`), says how likely
each letter was. An alternative counts for a letter when it writes the same text as the chosen
token up to the verdict and then that letter, not followed by a letter or digit (`A`, `A"` and
`A",` count for A; `AB`, ` A` or `Apple` for neither). The probability is the letters' share of
each other's mass, so tokens that are no verdict at all drop out.

When the position cannot be found (an answer that does not start with the verdict, an older
`essay_a` answer, tokens that do not spell the text, the chosen letter not the parsed winner)
the result is None: never a guess. When only one letter is listed, the other's probability is
at most what the listed tokens leave and at most the least likely listed alternative (the list
is the top k), and that upper bound is taken, so the result is never more extreme than the
provider's numbers allow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from common_core.events.llm import ComparisonWinner

VERDICT_LETTERS: dict[str, ComparisonWinner] = {
    "A": ComparisonWinner.ESSAY_A,
    "B": ComparisonWinner.ESSAY_B,
}
# The opening of an answer whose first key is the verdict (a code fence tolerated).
_VERDICT_FIRST = re.compile(r'\A\s*(?:```(?:json)?\s*)?\{\s*"winner"\s*:\s*"(?P<letter>[AB])"')


@dataclass(frozen=True, slots=True)
class TokenAlternative:
    """One of the most likely tokens at a position, with its natural log-probability."""

    token: str
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One token of the answer as written, its log-probability and the top alternatives the
    provider listed at its position (the chosen token may be among them)."""

    token: str
    logprob: float
    top: tuple[TokenAlternative, ...] = ()


def verdict_offset(text: str) -> int | None:
    """The character offset of the verdict letter when the answer starts with its verdict."""
    match = _VERDICT_FIRST.match(text)
    return match.start("letter") if match else None


def probability_essay_a_better(
    text: str | None, winner: ComparisonWinner, tokens: Sequence[TokenLogprob] | None
) -> float | None:
    """P(essay A is better) from the verdict token's alternatives; None when the verdict's
    token cannot be found with certainty (see the module docstring)."""
    if not text or not tokens:
        return None
    at = verdict_offset(text)
    if at is None or VERDICT_LETTERS[text[at]] is not winner:
        return None
    verdict_token = _token_at(text, at, tokens)
    if verdict_token is None:
        return None
    start, token = verdict_token
    mass = _letter_mass(token, at - start)
    if mass is None:
        return None
    mass_a, mass_b = mass
    total = mass_a + mass_b
    return mass_a / total if total > 0 else None


def _token_at(
    text: str, at: int, tokens: Sequence[TokenLogprob]
) -> tuple[int, TokenLogprob] | None:
    """The token covering character `at` and where it starts, provided the tokens up to it
    spell the text exactly."""
    start = 0
    for token in tokens:
        end = start + len(token.token)
        if text[start:end] != token.token:
            return None
        if end > at:
            return start, token
        start = end
    return None


def _letter_mass(token: TokenLogprob, lead: int) -> tuple[float, float] | None:
    """The probability mass of the alternatives that write A and B at the verdict position."""
    prefix = token.token[:lead]
    candidates = {alternative.token: alternative.logprob for alternative in token.top}
    listed_top = bool(candidates)
    candidates.setdefault(token.token, token.logprob)
    probabilities = {text: _probability(logprob) for text, logprob in candidates.items()}
    mass = dict.fromkeys(VERDICT_LETTERS, 0.0)
    seen: set[str] = set()
    for text, probability in probabilities.items():
        letter = _letter_written(text, prefix)
        if letter is not None and probability > 0:
            mass[letter] += probability
            seen.add(letter)
    if not seen:
        return None
    if len(seen) == 1:
        # The other letter is not listed: take the most it can be.
        bound = max(0.0, 1.0 - sum(probabilities.values()))
        if listed_top:
            bound = min(bound, *(_probability(a.logprob) for a in token.top))
        (missing,) = set(VERDICT_LETTERS) - seen
        mass[missing] = bound
    return mass["A"], mass["B"]


def _letter_written(token: str, prefix: str) -> str | None:
    """The verdict letter a token writes after `prefix`, if it writes one."""
    if not token.startswith(prefix):
        return None
    rest = token[len(prefix) :]
    if not rest or rest[0] not in VERDICT_LETTERS:
        return None
    if len(rest) > 1 and (rest[1].isalnum() or rest[1] == "_"):
        return None
    return rest[0]


def _probability(logprob: float) -> float:
    """exp(logprob); OpenAI's -9999 (far below the top 20) is 0."""
    return 0.0 if logprob <= -9999.0 else math.exp(min(0.0, logprob))
