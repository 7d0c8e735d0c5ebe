"""The offline judge: deterministic comparisons and rubric scores from transparent text features.

It is not a language model and says so in every justification. The features are deliberately
simple so a reader can check any verdict by hand:
- development: how much the writer says (word count, saturating around 400 words);
- vocabulary range: distinct words against length (Guiraud's root type-token ratio);
- sentence variety: several sentences whose lengths differ (coefficient of variation);
- relevance: how many of the instructions' content words the text takes up.
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
from dataclasses import dataclass

from common_core.events.llm import ComparisonWinner

HEURISTIC_MODEL = "heuristic-features-v1"

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s+|$)")
_STOPWORD_TEXT = (
    "a about above after again against all also am an and any are as at be because been "
    "before being below between both but by can could did do does doing down during each "
    "few for from further had has have having he her here hers herself him himself his how "
    "i if in into is it its itself just me more most my myself no nor not now of off on "
    "once only or other our ours ourselves out over own same she should so some such than "
    "that the their theirs them themselves then there these they this those through to too "
    "under until up very was we were what when where which while who whom why will with "
    "would you your yours yourself yourselves essay write writing discuss explain describe "
    "answer question students student words use using one two"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_SUFFIXES = (
    "ations",
    "ation",
    "ments",
    "ment",
    "ness",
    "ings",
    "ing",
    "ies",
    "ed",
    "es",
    "ly",
    "s",
)

_DEVELOPMENT_SATURATION_WORDS = 400
_GUIRAUD_SATURATION = 9.0
_VARIETY_SATURATION_CV = 0.5
_RELEVANCE_SATURATION = 0.5
_TIE_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class TextFeatures:
    """The four features, each in 0..1, and the overall score they give."""

    development: float
    vocabulary_range: float
    sentence_variety: float
    relevance: float | None  # None when the instructions have no content words to match
    overall: float

    def describe(self) -> str:
        """A short human-readable account of the features."""
        relevance = "n/a" if self.relevance is None else f"{self.relevance:.2f}"
        return (
            f"development {self.development:.2f}, vocabulary range {self.vocabulary_range:.2f}, "
            f"sentence variety {self.sentence_variety:.2f}, relevance {relevance}"
        )


@dataclass(frozen=True, slots=True)
class HeuristicComparison:
    """The heuristic verdict on a pair."""

    winner: ComparisonWinner
    confidence: int
    justification: str
    features_a: TextFeatures
    features_b: TextFeatures


@dataclass(frozen=True, slots=True)
class HeuristicRubricScores:
    """Rubric scores (each 1..5) with the overall mean and feedback."""

    relevance: int
    depth: int
    clarity: int
    technical: int
    overall: float
    feedback: str


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) - len(suffix) >= 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def words(text: str) -> list[str]:
    """Lower-case words of a text (letters and inner apostrophes)."""
    return [w.lower() for w in _WORD.findall(text)]


def content_stems(text: str) -> set[str]:
    """Stems of the words that carry meaning (stop words and very short words dropped)."""
    return {_stem(w) for w in words(text) if len(w) > 2 and w not in _STOPWORDS}


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if words(s)]


def _development(word_count: int) -> float:
    if word_count == 0:
        return 0.0
    return min(1.0, math.log1p(word_count) / math.log1p(_DEVELOPMENT_SATURATION_WORDS))


def _vocabulary_range(tokens: list[str]) -> float:
    if not tokens:
        return 0.0
    guiraud = len(set(tokens)) / math.sqrt(len(tokens))
    return min(1.0, guiraud / _GUIRAUD_SATURATION)


def _sentence_variety(sentences: list[str]) -> float:
    lengths = [len(words(s)) for s in sentences]
    if len(lengths) < 2:
        return 0.0
    mean = statistics.fmean(lengths)
    cv = statistics.pstdev(lengths) / mean if mean else 0.0
    # Several sentences are a precondition of variety; three or more count fully.
    count_factor = min(1.0, (len(lengths) - 1) / 2)
    return count_factor * min(1.0, cv / _VARIETY_SATURATION_CV)


def _relevance(tokens: list[str], instructions: str) -> float | None:
    wanted = content_stems(instructions)
    if not wanted:
        return None
    present = {_stem(w) for w in tokens}
    coverage = len(wanted & present) / len(wanted)
    return min(1.0, coverage / _RELEVANCE_SATURATION)


def text_features(text: str, instructions: str = "") -> TextFeatures:
    """Measure a text against the instructions it answers."""
    tokens = words(text)
    development = _development(len(tokens))
    vocabulary = _vocabulary_range(tokens)
    variety = _sentence_variety(_sentences(text))
    relevance = _relevance(tokens, instructions)
    base = 0.45 * development + 0.30 * vocabulary + 0.25 * variety
    # An off-topic text is a weak answer however well written, so relevance scales the rest.
    overall = base if relevance is None else base * (0.3 + 0.7 * relevance)
    return TextFeatures(development, vocabulary, variety, relevance, overall)


def _tie_key(essay_id: str, text: str) -> str:
    return hashlib.sha256(f"{text}\x00{essay_id}".encode()).hexdigest()


def compare_essays(
    *, essay_a_id: str, essay_a: str, essay_b_id: str, essay_b: str, instructions: str
) -> HeuristicComparison:
    """Prefer the essay with the higher feature score; ties go by a content hash, so swapping
    the essays swaps the verdict."""
    features_a = text_features(essay_a, instructions)
    features_b = text_features(essay_b, instructions)
    diff = features_a.overall - features_b.overall
    if abs(diff) > _TIE_EPSILON:
        a_wins = diff > 0
        basis = "higher feature score"
    else:
        a_wins = _tie_key(essay_a_id, essay_a) <= _tie_key(essay_b_id, essay_b)
        basis = "equal feature scores; tie broken by a content hash"
    confidence = 1 + min(4, int(abs(diff) / 0.06))
    winner = ComparisonWinner.ESSAY_A if a_wins else ComparisonWinner.ESSAY_B
    label = "A" if a_wins else "B"
    justification = (
        "Heuristic judge (not a language model): compared transparent text features only. "
        f"Essay A scored {features_a.overall:.3f} ({features_a.describe()}); "
        f"essay B scored {features_b.overall:.3f} ({features_b.describe()}). "
        f"Essay {label} preferred ({basis})."
    )
    return HeuristicComparison(winner, confidence, justification, features_a, features_b)


def _to_scale(value: float) -> int:
    return 1 + round(4 * max(0.0, min(1.0, value)))


def _clarity(text: str) -> float:
    sentences = _sentences(text)
    if not sentences:
        return 0.0
    mean_length = statistics.fmean(len(words(s)) for s in sentences)
    # Sentences of roughly 10-25 words read most easily; very short or very long ones less so.
    if mean_length < 10:
        length_fit = mean_length / 10
    elif mean_length <= 25:
        length_fit = 1.0
    else:
        length_fit = max(0.0, 1 - (mean_length - 25) / 25)
    return 0.6 * length_fit + 0.4 * _sentence_variety(sentences)


def score_answer(answer: str, question: str) -> HeuristicRubricScores:
    """Rubric scores 1..5 for relevance, depth, clarity and technical range."""
    features = text_features(answer, question)
    relevance_value = 0.5 if features.relevance is None else features.relevance
    relevance = _to_scale(relevance_value)
    depth = _to_scale(features.development)
    clarity = _to_scale(_clarity(answer))
    technical = _to_scale(features.vocabulary_range)
    overall = round((relevance + depth + clarity + technical) / 4, 2)
    feedback = (
        "Heuristic scoring (no language model was used): scores come from transparent text "
        f"features ({features.describe()}). Relevance reflects overlap with the question's "
        "words, depth the length of the answer, clarity sentence length and variety, technical "
        "the range of vocabulary. Treat these scores as a rough indication only."
    )
    return HeuristicRubricScores(relevance, depth, clarity, technical, overall, feedback)
