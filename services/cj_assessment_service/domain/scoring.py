"""Turning a batch's answered comparisons into rankings, statistics and grade projections."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from cj_assessment_service.domain.bradley_terry import (
    SCORING_BIAS_PRIOR_PRECISION,
    BradleyTerryFit,
    Comparisons,
    debiased_position_bias,
    fit_bradley_terry,
    ranks_from_scores,
    scale_separation_reliability,
    split_half_reliability,
    weigh_soft_verdicts,
)
from cj_assessment_service.domain.grade_projection import project_grades
from cj_assessment_service.domain.judge_consistency import order_consistency
from cj_assessment_service.domain.judge_fit import (
    AI_GROUP,
    HUMAN_GROUP,
    HumanCounts,
    human_judging_statistics,
)
from cj_assessment_service.domain.stopping import STOP_RELIABILITY, posterior_reliability
from common_core.events.cj import (
    CJStatistics,
    EssayRanking,
    GradeProjection,
    JudgeCalibrationBin,
)

# The reliability figures adaptive pairing invalidates. Both take the spread of weakly shrunk
# scores as signal, and pairing winners with winners keeps early chance wins spread out: on 60
# essays judged by a coin or by a judge that only prefers the essay shown first, 20 comparisons
# each, scale separation read 0.80-0.89 and split-half 0.76-0.87 (Bramley 2015 reports 0.89 for
# coin flips). The posterior reliability is likelihood-based and stays valid (domain/stopping.py).
ADAPTIVE_PAIRING_NOT_VALID = ("scale_separation_reliability", "split_half_reliability")


@dataclass(frozen=True, slots=True)
class ScoredEssay:
    """An essay of the batch as the scorer sees it; anchors carry their known grade."""

    essay_id: str
    anchor_grade: str | None = None


@dataclass(frozen=True, slots=True)
class BatchScores:
    """Everything the completed event reports about the ranking."""

    rankings: list[EssayRanking]
    statistics: CJStatistics
    grade_projections: list[GradeProjection] | None


def score_batch(
    essays: list[ScoredEssay],
    comparisons: Comparisons,
    *,
    target_reliability: float | None = None,
    adaptive_pairing: bool = False,
    judges: tuple[npt.NDArray[np.bool_], list[str]] | None = None,
    human_counts: HumanCounts | None = None,
) -> BatchScores:
    """Fit Bradley-Terry on every essay (anchors included); rank and project the non-anchors.

    `comparisons` index `essays`. `posterior_reliability` is the stop rule's estimate on the same
    comparisons, so a batch that stopped on it reports the figure it stopped on;
    `target_reliability` is the stop rule's target when one applied to the batch.
    `adaptive_pairing` says the pairs were chosen from earlier answers: scale separation and
    split-half reliability are then listed as not valid (ADAPTIVE_PAIRING_NOT_VALID).

    With human judges (`judges`: which verdicts are people's and who gave each, in the order of
    `comparisons`; `human_counts`: their pairs), people's and the AI's verdicts are one fit with
    an order effect per kind of judge; `position_bias_logit` and the judge-consistency figures
    stay the AI's, and `statistics.human_judging` reports the judges' misfit and the AI-human
    agreement (domain/judge_fit.py). A human judge flagged as misfitting is left out of the
    ranking's fit (and named in `left_out_of_ranking`).
    """
    n = len(essays)
    answers = len(comparisons) > 0
    comparisons = weigh_soft_verdicts(comparisons)
    human = judges[0] if judges is not None else None
    people = human is not None and bool(human.any()) and not bool(human.all())
    ai_verdicts = comparisons.subset(~human) if people and human is not None else comparisons
    ai_fit = fit_bradley_terry(ai_verdicts, bias_prior_precision=SCORING_BIAS_PRIOR_PRECISION)
    fit = ai_fit
    human_statistics = None
    if people and human is not None:
        fit = _joint_fit(comparisons, human)
    if human_counts is not None:
        human_statistics = human_judging_statistics(
            comparisons,
            fit,
            judges,
            ai_fit=ai_fit if people else None,
            essay_ids=[e.essay_id for e in essays],
            counts=human_counts,
        )
        left_out = [j.judge_id for j in human_statistics.judges if j.kind == "human" and j.flagged]
        if left_out and judges is not None:
            # A misfitting teacher's decisions do not fit anyone's scale: the ranking is fitted
            # without them (in the benchmark this is as good or better: docs/benchmarks.md).
            kept = ~np.isin(np.asarray(judges[1], dtype=object), left_out)
            comparisons, human = comparisons.subset(kept), judges[0][kept]
            fit = _joint_fit(comparisons, human) if human.any() else ai_fit
            human_statistics = human_statistics.model_copy(
                update={"left_out_of_ranking": sorted(left_out)}
            )
    position_bias = debiased_position_bias(
        ai_verdicts, ai_fit, bias_prior_precision=SCORING_BIAS_PRIOR_PRECISION
    )
    played, wins = comparisons.counts()
    errors = fit.standard_errors if fit.standard_errors is not None else np.zeros(n)
    students = np.array([i for i, e in enumerate(essays) if e.anchor_grade is None], dtype=np.int64)
    student_scores = fit.scores[students] - (fit.scores[students].mean() if students.size else 0.0)
    ranks = ranks_from_scores(student_scores)
    rankings = sorted(
        (
            EssayRanking(
                essay_id=essays[idx].essay_id,
                rank=int(rank),
                score=round(float(score), 6),
                standard_error=round(float(errors[idx]), 6) if answers else None,
                comparisons=int(played[idx]),
                wins=int(wins[idx]),
            )
            for idx, rank, score in zip(students, ranks, student_scores, strict=True)
        ),
        key=lambda r: r.rank,
    )
    consistency = order_consistency(ai_verdicts)
    statistics = CJStatistics(
        scale_separation_reliability=(
            scale_separation_reliability(fit.scores, errors) if answers else None
        ),
        split_half_reliability=split_half_reliability(comparisons) if answers else None,
        position_bias_logit=round(position_bias.logit, 6) if answers else None,
        position_bias_standard_error=(
            round(position_bias.standard_error, 6)
            if answers and position_bias.standard_error is not None
            else None
        ),
        comparisons_per_essay=round(2.0 * len(comparisons) / n, 4) if n else 0.0,
        posterior_reliability=posterior_reliability(comparisons) if answers else None,
        target_reliability=target_reliability,
        stop_rule_reliability=STOP_RELIABILITY if target_reliability is not None else None,
        not_valid_reliabilities=list(ADAPTIVE_PAIRING_NOT_VALID) if adaptive_pairing else None,
        pairs_in_both_orders=consistency.pairs_in_both_orders,
        soft_verdicts=int(comparisons.soft().sum()),
        order_flip_rate=(
            None if consistency.order_flip_rate is None else round(consistency.order_flip_rate, 6)
        ),
        judge_calibration=[
            JudgeCalibrationBin(
                low=b.low,
                high=b.high,
                verdicts=b.verdicts,
                mean_stated=round(b.mean_stated, 6),
                expected_agreement=round(b.expected_agreement, 6),
                observed_agreement=round(b.observed_agreement, 6),
            )
            for b in consistency.calibration
        ],
        human_judging=human_statistics,
    )
    return BatchScores(rankings, statistics, _grade_projections(essays, fit.scores, errors))


def _joint_fit(comparisons: Comparisons, human: npt.NDArray[np.bool_]) -> BradleyTerryFit:
    """People's and the AI's verdicts in one fit, an order effect for each kind of judge."""
    return fit_bradley_terry(
        replace(comparisons, position_group=np.where(human, HUMAN_GROUP, AI_GROUP)),
        bias_prior_precision=SCORING_BIAS_PRIOR_PRECISION,
    )


def _grade_projections(
    essays: list[ScoredEssay], scores: np.ndarray, errors: np.ndarray
) -> list[GradeProjection] | None:
    anchors: dict[str, list[float]] = {}
    for idx, essay in enumerate(essays):
        if essay.anchor_grade is not None:
            anchors.setdefault(essay.anchor_grade, []).append(float(scores[idx]))
    if not anchors:
        return None
    students = [i for i, e in enumerate(essays) if e.anchor_grade is None]
    projected = project_grades(scores[students], errors[students], anchors)
    return [
        GradeProjection(
            essay_id=essays[idx].essay_id,
            predicted_grade=p.predicted_grade,
            grade_probabilities=p.probabilities,
            confidence=min(1.0, max(0.0, p.confidence)),
        )
        for idx, p in zip(students, projected, strict=True)
    ]
