"""An essay answer's four scoring stages and how their scores are fused (pure).

Stages: `rule_score` (transparent rules, inline at submit), `gpt` (the rubric request), `rag`
(the rubric request grounded in the course's reference passages) and `fusion` (this module).
Every stage score is on the rubric's 1..5 scale. The fused score is the weighted mean of the
stage scores that exist, with FUSION_WEIGHTS; a stage that was skipped (no reference material
for the question) or failed gives its weight to the others in proportion to theirs, and the
result says so (`degraded`, each part's status). gpt and rag disagree when their overall scores
differ by more than DISAGREEMENT_POINTS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from submission_service.domain.assessments import JobStatus


class JobType(StrEnum):
    """What a scoring job does."""

    RESPONSE_RUBRIC = "response_rubric"  # a completed answer outside an assessment
    GPT = "gpt"  # an essay's rubric request
    RAG = "rag"  # an essay's rubric request grounded in reference passages
    FUSION = "fusion"  # combining an essay's stage scores


# The fused score's weights (the original design's 20/30/30 among scores, fusion aside).
FUSION_WEIGHTS: Mapping[str, float] = {"rule_score": 0.2, "gpt": 0.4, "rag": 0.4}
DISAGREEMENT_POINTS = 1.0
FUSION_VERSION = "fusion-v1"
NO_MATERIAL_NOTE = "no reference material for this question: the rag stage was skipped"

# Rule score: an answer reaching this many words counts as developed for the length rule, and
# one using this share of the question's own terms as on the question.
RULE_MIN_WORDS = 80
RULE_MIN_SENTENCES = 3
RULE_QUESTION_TERMS_SHARE = 0.4
_COMMON_WORDS_TEXT = (
    "about after also argue because been could does each either from have into more most "
    "ones other should some than that their them then there these they this those what when "
    "where which while will with would your paragraph paragraphs position"
)
_COMMON_WORDS = frozenset(_COMMON_WORDS_TEXT.split(" "))
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SENTENCE = re.compile(r"[^.!?]*[^\W\d_][^.!?]*[.!?]")


@dataclass(frozen=True, slots=True)
class RuleScore:
    """The rule stage's score of an essay answer (1..5) and the counts it came from."""

    score: float
    words: int
    sentences: int
    question_terms: float  # share of the question's own terms the answer uses

    def as_json(self) -> dict[str, Any]:
        """The JSON form stored with the essay's score record."""
        return {
            "score": self.score,
            "words": self.words,
            "sentences": self.sentences,
            "question_terms": self.question_terms,
        }


def _terms(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return {w.removesuffix("s") for w in words if len(w) >= 4 and w not in _COMMON_WORDS}


def essay_rule_score(
    answer: str, question: str = "", *, min_words: int = RULE_MIN_WORDS
) -> RuleScore:
    """Transparent rules: length against `min_words` (0.7) and complete sentences (0.3), scaled
    by how many of the question's own terms the answer uses (none: it does not answer it)."""
    word_count = len(_WORD.findall(answer))
    sentence_count = len(_SENTENCE.findall(answer))
    length = min(1.0, word_count / min_words)
    sentences = min(1.0, sentence_count / RULE_MIN_SENTENCES)
    wanted = _terms(question)
    share = len(wanted & _terms(answer)) / len(wanted) if wanted else 1.0
    on_question = min(1.0, share / RULE_QUESTION_TERMS_SHARE)
    score = 1 + 4 * (0.7 * length + 0.3 * sentences) * on_question
    return RuleScore(round(score, 2), word_count, sentence_count, round(share, 3))


@dataclass(frozen=True, slots=True)
class StagePart:
    """One stage's contribution to the fused score."""

    stage: str
    status: JobStatus
    score: float | None  # 1..5, None unless completed
    weight: float  # the weight it got in the fusion (0 when it has no score)

    def as_json(self) -> dict[str, Any]:
        """JSON form for results, webhooks and events."""
        return {
            "stage": self.stage,
            "status": self.status.value,
            "score": self.score,
            "weight": self.weight,
        }


@dataclass(frozen=True, slots=True)
class EssayFusion:
    """An essay's fused score with its parts."""

    overall: float | None  # 1..5; None when neither LLM stage produced a score
    parts: tuple[StagePart, ...]
    disagreement: bool
    degraded: bool
    citations: tuple[str, ...]

    @property
    def failed(self) -> bool:
        """Neither gpt nor rag scored the essay: there is nothing to fuse."""
        return self.overall is None

    def as_json(self) -> dict[str, Any]:
        """JSON form for results, webhooks and events."""
        return {
            "overall": self.overall,
            "parts": [p.as_json() for p in self.parts],
            "disagreement": self.disagreement,
            "degraded": self.degraded,
            "citations": list(self.citations),
            "version": FUSION_VERSION,
        }


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """A finished LLM stage as fusion sees it."""

    status: JobStatus
    overall: float | None = None
    citations: tuple[str, ...] = ()


def fuse_essay(rule_score: float, gpt: StageOutcome, rag: StageOutcome) -> EssayFusion:
    """Weighted mean of the stage scores that exist; the disagreement flag when gpt and rag
    are more than DISAGREEMENT_POINTS apart. Without an LLM score the essay is not scored."""
    available = {"rule_score": rule_score}
    statuses = {"rule_score": JobStatus.COMPLETED, "gpt": gpt.status, "rag": rag.status}
    for stage, outcome in (("gpt", gpt), ("rag", rag)):
        if outcome.status is JobStatus.COMPLETED and outcome.overall is not None:
            available[stage] = outcome.overall
    has_llm = "gpt" in available or "rag" in available
    total_weight = sum(FUSION_WEIGHTS[s] for s in available)
    parts = tuple(
        StagePart(
            stage,
            statuses[stage],
            available.get(stage),
            round(FUSION_WEIGHTS[stage] / total_weight, 4)
            if has_llm and stage in available
            else 0.0,
        )
        for stage in FUSION_WEIGHTS
    )
    overall = (
        round(sum(FUSION_WEIGHTS[s] * v for s, v in available.items()) / total_weight, 3)
        if has_llm
        else None
    )
    disagreement = (
        "gpt" in available
        and "rag" in available
        and abs(available["gpt"] - available["rag"]) > DISAGREEMENT_POINTS
    )
    return EssayFusion(
        overall=overall,
        parts=parts,
        disagreement=disagreement,
        degraded=len(available) < len(FUSION_WEIGHTS),
        citations=rag.citations,
    )
