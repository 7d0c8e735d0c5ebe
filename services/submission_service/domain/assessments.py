"""Assessment definitions, rule scoring, job states, stage progress and score fusion (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common_core.limits import MAX_ID_CHARS, MAX_PASSAGE_CHARS


class QuestionType(StrEnum):
    """How a question is scored."""

    THEORETICAL = "theoretical"  # one correct option, scored inline
    PROFILE = "profile"  # any chosen option earns the full weight, scored inline
    ESSAY = "essay"  # free text, scored asynchronously on a rubric by the LLM provider


class _Definition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuestionOption(_Definition):
    """A selectable answer of a theoretical or profile question."""

    id: str = Field(min_length=1)
    text: str


class PassageKind(StrEnum):
    """What a reference passage is."""

    COURSE_TEXT = "course_text"  # the course text the question is about
    KEY_POINT = "key_point"  # a point a good answer covers
    EXEMPLAR = "exemplar"  # an exemplar answer


class ReferencePassage(_Definition):
    """Course reference material for retrieval-grounded (rag) scoring of essay questions."""

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: PassageKind
    question_ids: tuple[str, ...] = Field(min_length=1)
    text: str = Field(min_length=1, max_length=MAX_PASSAGE_CHARS)


class Question(_Definition):
    """One question of a module."""

    id: str = Field(min_length=1)
    type: QuestionType
    prompt: str
    weight: float = Field(default=1.0, gt=0)
    options: tuple[QuestionOption, ...] = ()
    correct_option: str | None = None
    rubric: dict[str, Any] | None = None
    learning_outcome_id: str | None = None

    @model_validator(mode="after")
    def _type_specific_fields(self) -> Question:
        option_ids = {o.id for o in self.options}
        if self.type is QuestionType.THEORETICAL and self.correct_option not in option_ids:
            raise ValueError(f"question {self.id}: correct_option must be one of its options")
        if self.type is QuestionType.PROFILE and not self.options:
            raise ValueError(f"question {self.id}: a profile question needs options")
        if self.type is QuestionType.ESSAY and not self.rubric:
            raise ValueError(f"question {self.id}: an essay question needs a rubric")
        return self


class Module(_Definition):
    """A group of questions; responses name it by `module_slug`."""

    slug: str = Field(min_length=1)
    title: str
    questions: tuple[Question, ...] = Field(min_length=1)


class AssessmentDefinition(_Definition):
    """A whole assessment as shipped in a content file."""

    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    description: str = ""
    modules: tuple[Module, ...] = Field(min_length=1)
    reference_passages: tuple[ReferencePassage, ...] = ()

    @model_validator(mode="after")
    def _unique_questions(self) -> AssessmentDefinition:
        seen: set[tuple[str, str]] = set()
        for module, question in self.questions():
            key = (module.slug, question.id)
            if key in seen:
                raise ValueError(f"question {question.id} appears twice in module {module.slug}")
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _passages_name_essay_questions(self) -> AssessmentDefinition:
        essays = {q.id for _, q in self.questions() if q.type is QuestionType.ESSAY}
        ids: set[str] = set()
        for passage in self.reference_passages:
            if passage.id in ids:
                raise ValueError(f"reference passage {passage.id} appears twice")
            ids.add(passage.id)
            unknown = sorted(set(passage.question_ids) - essays)
            if unknown:
                raise ValueError(
                    f"reference passage {passage.id} names {unknown}, not essay questions here"
                )
        return self

    def passages_for(self, question_id: str) -> list[ReferencePassage]:
        """The reference passages about a question, in definition order."""
        return [p for p in self.reference_passages if question_id in p.question_ids]

    def questions(self) -> list[tuple[Module, Question]]:
        """Every question with its module, in definition order."""
        return [(m, q) for m in self.modules for q in m.questions]


class JobStatus(StrEnum):
    """Async scoring job states: `queued → in_progress → completed | failed`, or `skipped`
    (a stage with nothing to do, such as rag without reference material)."""

    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def is_terminal(self) -> bool:
        """Completed, failed and skipped jobs never change again."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.SKIPPED)


class ScoreStatus(StrEnum):
    """State of one question's score record."""

    SCORED = "scored"
    MISSING = "missing"  # no answer: scored as zero (degraded mode) instead of failing
    PENDING = "pending"  # an essay waiting for its rubric score
    FAILED = "failed"  # the essay scoring job failed


@dataclass(frozen=True, slots=True)
class SubmittedAnswer:
    """The answer a submission uses for one question (the newest response)."""

    response_id: str
    answer_text: str
    answer_metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def selected_option(self) -> str:
        """For option questions: `answer_metadata.selected_option`, else the answer text."""
        chosen = self.answer_metadata.get("selected_option")
        return str(chosen if chosen is not None else self.answer_text).strip()


@dataclass(frozen=True, slots=True)
class QuestionScore:
    """One question's score in a submission."""

    module_slug: str
    question_id: str
    score_type: QuestionType
    status: ScoreStatus
    max_score: float
    score: float | None = None
    response_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def score_question(
    module: Module, question: Question, answer: SubmittedAnswer | None
) -> QuestionScore:
    """Score a question inline, or mark an essay pending / any unanswered question missing."""
    base: dict[str, Any] = {
        "module_slug": module.slug,
        "question_id": question.id,
        "score_type": question.type,
        "max_score": question.weight,
    }
    if answer is None or not (answer.answer_text.strip() or answer.selected_option):
        return QuestionScore(**base, status=ScoreStatus.MISSING, score=0.0)
    if question.type is QuestionType.ESSAY:
        return QuestionScore(**base, status=ScoreStatus.PENDING, response_id=answer.response_id)
    chosen = answer.selected_option
    option_ids = {o.id for o in question.options}
    if question.type is QuestionType.THEORETICAL:
        correct = chosen == question.correct_option
        return QuestionScore(
            **base,
            status=ScoreStatus.SCORED,
            score=question.weight if correct else 0.0,
            response_id=answer.response_id,
            detail={"selected_option": chosen, "correct": correct},
        )
    valid = chosen in option_ids
    return QuestionScore(
        **base,
        status=ScoreStatus.SCORED if valid else ScoreStatus.MISSING,
        score=question.weight if valid else 0.0,
        response_id=answer.response_id,
        detail={"selected_option": chosen, "valid_option": valid},
    )


def essay_points(overall: float, weight: float) -> float:
    """A rubric overall score (1..5) as points out of the question's weight."""
    return round((max(1.0, min(5.0, overall)) - 1.0) / 4.0 * weight, 6)


@dataclass(frozen=True, slots=True)
class FusedResult:
    """The assessment's combined result once every stage is done."""

    total: float
    max_total: float
    percent: float
    degraded: bool
    by_type: dict[str, dict[str, float]]


def fuse(scores: Sequence[QuestionScore]) -> FusedResult:
    """Combine rule and essay scores; missing or failed items count as zero and mark degradation."""
    by_type: dict[str, dict[str, float]] = {}
    total = 0.0
    max_total = 0.0
    degraded = False
    for item in scores:
        points = item.score or 0.0
        if item.status in (ScoreStatus.MISSING, ScoreStatus.FAILED):
            degraded = True
        if item.detail.get("fusion", {}).get("degraded"):  # an essay fused without a stage
            degraded = True
        bucket = by_type.setdefault(item.score_type.value, {"score": 0.0, "max_score": 0.0})
        bucket["score"] = round(bucket["score"] + points, 6)
        bucket["max_score"] = round(bucket["max_score"] + item.max_score, 6)
        total += points
        max_total += item.max_score
    percent = round(100.0 * total / max_total, 2) if max_total else 0.0
    return FusedResult(round(total, 6), round(max_total, 6), percent, degraded, by_type)


# Status weights of an essay answer's four stages (the original design's job types).
STAGE_WEIGHTS: dict[str, float] = {"rule_score": 0.2, "gpt": 0.3, "rag": 0.3, "fusion": 0.2}


@dataclass(frozen=True, slots=True)
class StageProgress:
    """Progress of one stage of a submitted assessment."""

    name: str
    weight: float
    status: JobStatus
    done: int
    total: int
    skipped: int = 0

    @property
    def fraction(self) -> float:
        """Share of the stage's work that is finished (an empty stage counts as done)."""
        return 1.0 if self.total == 0 else self.done / self.total


def _stage_status(jobs: Sequence[JobStatus]) -> JobStatus:
    if not jobs:
        return JobStatus.COMPLETED
    if all(s is JobStatus.SKIPPED for s in jobs):
        return JobStatus.SKIPPED
    if all(s.is_terminal for s in jobs):
        ran = [s for s in jobs if s is not JobStatus.SKIPPED]
        return JobStatus.FAILED if all(s is JobStatus.FAILED for s in ran) else JobStatus.COMPLETED
    if any(s is not JobStatus.QUEUED for s in jobs):
        return JobStatus.IN_PROGRESS
    return JobStatus.QUEUED


def stage_progress(
    *, rule_items: int, jobs: Sequence[tuple[str, JobStatus]]
) -> list[StageProgress]:
    """The four stages: rule_score (inline at submit, so complete), then one per job type
    (`gpt`, `rag`, `fusion`), each from the states of its jobs; a skipped job counts as done."""
    stages = [
        StageProgress(
            "rule_score", STAGE_WEIGHTS["rule_score"], JobStatus.COMPLETED, rule_items, rule_items
        )
    ]
    for name in ("gpt", "rag", "fusion"):
        states = [status for job_type, status in jobs if job_type == name]
        stages.append(
            StageProgress(
                name,
                STAGE_WEIGHTS[name],
                _stage_status(states),
                sum(1 for s in states if s.is_terminal),
                len(states),
                sum(1 for s in states if s is JobStatus.SKIPPED),
            )
        )
    return stages


def overall_progress(stages: Sequence[StageProgress]) -> float:
    """Weighted progress of all stages, 0..1."""
    return round(sum(s.weight * s.fraction for s in stages), 4)
