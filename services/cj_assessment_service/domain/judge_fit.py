"""Human and AI judges of one batch: one Bradley-Terry fit, each judge's misfit, and how far the
AI's ranking agrees with the teachers.

One fit. Every verdict, human or AI, enters the same fit (domain/bradley_terry.py); the order
effect is one term per kind of judge (`position_group` 0 for the AI, 1 for humans), since a
model shown essays in an order and a teacher reading them in an order need not favour the first
by the same amount.

Misfit (Wright and Masters 1982; Pollitt 2012 for judges in comparative judgement). Each
verdict has a residual r = y - p (y the decision, 1 when the first essay was picked, else 0, also
for a soft verdict, whose stated probability the fit is made of; p the probability that the
first essay wins) and a model variance v = p(1 - p). A judge's outfit is
the mean of r^2 / v (sensitive to surprising verdicts on pairs far apart), its infit
sum r^2 / sum v (information-weighted: dominated by the close pairs where the judge's decision
matters). Both have expectation 1 for a judge who decides as the model says; above 1 the judge
is noisier than the model, below 1 more predictable.

Which model. With 90 % AI verdicts the joint scale is the AI's, and a teacher who is merely
less sharp than the AI (a flatter curve of P(A wins) against the gap) misfits it on every pair
far apart: in the benchmark (6 batches) honest teachers at 0.6 times the AI's logit had mean
infit 1.1-1.7 at the raw joint fit, beside 1.8 for one tossing a coin on half its pairs, and
4 of 24 honest judge-batches were flagged. So p is the judge's kind's calibration of the fitted
gap, sigmoid(a (theta_A - theta_B) + d), its slope a and offset d fitted by logistic
regression (`calibrate_kind`) on the verdicts of the judge's peers (the other judges of its
kind: an erratic judge would otherwise flatten its own reference; a judge alone in its kind,
the AI, on its own verdicts). Misfit then says how a judge departs from judges of its kind, not
how teachers depart from the AI (which the agreement figure reports). Peers whose curve hardly
rises with the gap (slope below MIN_PEER_SLOPE: in a panel of two, one of them contrary) are no
reference; the judge's own verdicts are then.

The flag. A judge is flagged when the infit is both large (above INFIT_CUT = 1.3, the usual
upper bound of the "reasonable" mean-square range for ordinary tests in Wright, Linacre et
al. 1994, Rasch Measurement Transactions 8:3) and more than
FLAG_Z standard errors above 1 (Wright and Masters' cube-root standardisation of the infit,
its variance from the binomial's fourth moment). Each alone fails a small panel: a judge of
20 verdicts has an infit standard error near 0.35, so a fixed 1.3 cut flags honest judges by
chance, while a significance test alone flags a judge of thousands of verdicts for a trivially
small misfit. The rule of No More Marking and Pollitt, infit above the judges' mean + 2 sd,
cannot flag anyone in a panel of five or fewer judges: no value of a sample of n lies more than
(n - 1) / sqrt(n) sample standard deviations from its mean (1.79 at n = 5, 2.04 at 6); it suits
the hundreds of judges of a national moderation, not one school's panel.

Agreement. The share of human decisions whose chosen essay the AI-only fit (AI verdicts only)
scores higher, with a Wilson interval. Its estimand is conditional on this batch's AI scores
and the pairs the humans were given: the mean over the human decisions of the probability that
the decision agrees with the AI's order. Given the pairs, the decisions are independent draws
(an essay appearing in several decisions shares the AI's score but not the judges' coin), so
the interval's only idealisation is one probability for all decisions; with probabilities that
vary between decisions the binomial variance overstates the true one and the interval is
conservative. It is not an interval for other teachers or other essays (a bootstrap over
judges, with five of them, could not give one either).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.special import expit, ndtri

from cj_assessment_service.domain.bradley_terry import (
    MAX_STEP_HALVINGS,
    BradleyTerryFit,
    Comparisons,
    fit_bradley_terry,
)
from common_core.events.cj import (
    HumanDisagreement,
    HumanJudgingStatistics,
    JudgeFitStatistics,
)

AI_GROUP = 0
HUMAN_GROUP = 1
INFIT_CUT = 1.3
FLAG_Z = 2.0
AGREEMENT_CONFIDENCE = 0.95
DISAGREEMENTS_SHOWN = 5
# Weak priors on a kind's calibration (slope around 1, offset around 0): they only keep a kind
# whose verdicts all follow the scale (perfect separation) finite.
CALIBRATION_PRIOR_PRECISION = 0.01
CALIBRATION_STEPS = 50
# Fewest verdicts of a judge's peers to calibrate its kind on them (two parameters).
MIN_PEER_VERDICTS = 20
# The least slope of the peers' curve that makes them a reference (below: they barely follow
# the scale, or contradict it).
MIN_PEER_SLOPE = 0.25


def fit_human_and_ai(comparisons: Comparisons, human: npt.NDArray[np.bool_]) -> BradleyTerryFit:
    """One fit of every verdict, with an order effect for the AI's verdicts and one for the
    humans' (`position_biases` = [AI, human]); `human` marks the human verdicts."""
    groups = np.where(human, HUMAN_GROUP, AI_GROUP).astype(np.int64)
    if groups.shape[0] and groups.max() == AI_GROUP:
        groups[:] = AI_GROUP
    fit = fit_bradley_terry(replace(comparisons, position_group=groups))
    biases = fit.position_biases
    if biases is not None and biases.shape[0] == 1:  # no human verdict: no human order effect
        biases = np.array([biases[0], 0.0])
    return replace(fit, position_biases=biases)


@dataclass(frozen=True, slots=True)
class JudgeMisfit:
    """One judge's fit statistics: verdicts, outfit and infit mean squares, the infit's
    standardised value (Wright and Masters' t) and whether the judge is flagged."""

    judge: str
    judgements: int
    outfit: float
    infit: float
    infit_z: float
    flagged: bool


def judge_misfit(
    comparisons: Comparisons,
    fit: BradleyTerryFit,
    judges: Sequence[str],
    human: npt.NDArray[np.bool_] | None = None,
) -> list[JudgeMisfit]:
    """Misfit of each judge (`judges[k]` gave verdict k) at a fit of these comparisons, in the
    order of the judges' ids. Each judge is measured against its kind's calibration of the
    fitted scale (`calibrate_kind`) on the other judges of the kind (on its own verdicts when
    they have fewer than MIN_PEER_VERDICTS), the kinds being human (`human[k]`) and AI (all AI
    when `human` is None)."""
    if len(judges) != len(comparisons):
        raise ValueError(f"{len(judges)} judges for {len(comparisons)} comparisons")
    if len(comparisons) == 0:
        return []
    names, judge = np.unique(np.asarray(judges, dtype=object), return_inverse=True)
    kinds = np.zeros(len(comparisons), dtype=np.bool_) if human is None else human
    gap = fit.scores[comparisons.essay_a] - fit.scores[comparisons.essay_b]
    # A judge's decisions, not its stated certainty: a soft verdict's probability is close to
    # the fit by construction (the fit is made of them), so its squared residual says nothing
    # of a Bernoulli variance; what the judge picked is what can misfit.
    outcome = comparisons.a_won.astype(np.float64)
    weight = np.ones(len(comparisons))
    eta = np.empty(len(comparisons))
    for index in range(names.shape[0]):
        mine = judge == index
        # Each judge is measured against the other judges of its kind (an erratic judge would
        # otherwise flatten its own reference); alone in its kind (the AI), against itself.
        peers = (kinds == kinds[np.argmax(mine)]) & ~mine
        slope, offset = 0.0, 0.0
        if peers.sum() >= MIN_PEER_VERDICTS:
            slope, offset = calibrate_kind(gap[peers], outcome[peers], weight[peers])
        if slope < MIN_PEER_SLOPE:
            # Too few peers, or peers who do not follow the scale (in a panel of two, one
            # contrary judge): measured against its own kind's curve, an honest judge would be
            # flagged for its peer's fault. Its own verdicts are then the reference.
            slope, offset = calibrate_kind(gap[mine], outcome[mine], weight[mine])
        eta[mine] = slope * gap[mine] + offset
    prob = np.clip(expit(eta), 1e-12, 1.0 - 1e-12)
    variance = prob * (1.0 - prob)
    squared = (outcome - prob) ** 2
    # E[(y - p)^4] of a Bernoulli y is v (1 - 3 v), so Var[(y - p)^2] = v - 4 v^2.
    fourth = variance - 4.0 * variance**2
    size = names.shape[0]
    count = np.bincount(judge, minlength=size)
    outfit = np.bincount(judge, squared / variance, minlength=size) / count
    total_variance = np.bincount(judge, variance, minlength=size)
    infit = np.bincount(judge, squared, minlength=size) / total_variance
    infit_sd = np.sqrt(np.bincount(judge, fourth, minlength=size)) / total_variance
    z = _standardised(infit, infit_sd)
    return [
        JudgeMisfit(
            str(names[i]),
            int(count[i]),
            float(outfit[i]),
            float(infit[i]),
            float(z[i]),
            bool(infit[i] > INFIT_CUT and z[i] > FLAG_Z),
        )
        for i in range(size)
    ]


def calibrate_kind(
    gap: npt.NDArray[np.float64], outcome: npt.NDArray[np.float64], weight: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """The slope and offset (a, d) of P(A wins) = sigmoid(a (theta_A - theta_B) + d) for one
    kind of judge's verdicts, the fitted score gaps `gap` held fixed: a logistic regression by
    Newton's method (weighted, soft outcomes as in the fit). A kind noisier than the scale gets
    a < 1; d is its order effect."""
    prior = np.array([1.0, 0.0])
    design = np.column_stack([gap, np.ones_like(gap)])

    def log_posterior(params: npt.NDArray[np.float64]) -> float:
        eta = design @ params
        likelihood = float(np.sum(weight * (outcome * eta - np.logaddexp(0.0, eta))))
        return likelihood - 0.5 * CALIBRATION_PRIOR_PRECISION * float(np.sum((params - prior) ** 2))

    params, value = prior.copy(), log_posterior(prior)
    for _ in range(CALIBRATION_STEPS):
        prob = expit(design @ params)
        gradient = design.T @ (weight * (outcome - prob)) - CALIBRATION_PRIOR_PRECISION * (
            params - prior
        )
        hessian = (design.T * (weight * prob * (1.0 - prob))) @ design + np.diag(
            [CALIBRATION_PRIOR_PRECISION] * 2
        )
        step = np.linalg.solve(hessian, gradient)
        # A full Newton step on a logistic likelihood can overshoot from far away (gaps of
        # several logits): halve it until the log posterior does not fall.
        for _ in range(MAX_STEP_HALVINGS):
            candidate = log_posterior(params + step)
            if candidate >= value - 1e-12 * (1.0 + abs(value)):
                break
            step = 0.5 * step
        params, value = params + step, log_posterior(params + step)
        if float(np.max(np.abs(step))) < 1e-9:
            break
    return float(params[0]), float(params[1])


def _standardised(
    mean_square: npt.NDArray[np.float64], sd: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Wright and Masters' t: (MS^(1/3) - 1)(3 / q) + q / 3, q the mean square's standard
    deviation (the Wilson-Hilferty cube root makes a chi-square-like mean square near normal)."""
    q = np.maximum(sd, 1e-12)
    return np.asarray((np.cbrt(mean_square) - 1.0) * (3.0 / q) + q / 3.0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A human decision the AI-only fit disagrees with most: the essay the human chose, the
    other one, the judge and the AI's fitted probability that the chosen essay is better."""

    chosen: int
    other: int
    judge: str
    ai_probability: float


@dataclass(frozen=True, slots=True)
class AgreementReport:
    """The share of human decisions the AI-only fit agrees with, its confidence interval, the
    human decisions counted and the decisions of largest disagreement (lowest AI probability
    of the human's choice first)."""

    decisions: int
    agreement: float
    low: float
    high: float
    confidence: float
    largest_disagreements: list[Disagreement]


def wilson_interval(successes: float, trials: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (`successes` may end in a half: ties
    counted half)."""
    z = float(ndtri(0.5 + confidence / 2.0))
    share = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1.0 - share) / trials + z * z / (4 * trials * trials))
    low = 0.0 if successes <= 0 else max(0.0, centre - half / denominator)
    high = 1.0 if successes >= trials else min(1.0, centre + half / denominator)
    return low, high


def ai_human_agreement(
    comparisons: Comparisons,
    human: npt.NDArray[np.bool_],
    judges: Sequence[str],
    *,
    ai_fit: BradleyTerryFit | None = None,
    confidence: float = AGREEMENT_CONFIDENCE,
    disagreements: int = DISAGREEMENTS_SHOWN,
) -> AgreementReport | None:
    """How often the AI-only fit's scores order a human decision's pair as the human did (a tie
    of scores counts half), with a Wilson interval; None without human or AI verdicts.
    `ai_fit` is the fit of the AI verdicts (`comparisons.subset(~human)`) when already made.
    """
    decisions = int(human.sum())
    if decisions == 0 or decisions == len(comparisons):
        return None
    if ai_fit is None:
        ai_fit = fit_bradley_terry(comparisons.subset(~human), with_standard_errors=False)
    won = comparisons.a_won[human]
    a, b = comparisons.essay_a[human], comparisons.essay_b[human]
    chosen, other = np.where(won, a, b), np.where(won, b, a)
    gap = ai_fit.scores[chosen] - ai_fit.scores[other]
    agreed = float(np.sum(gap > 0.0) + 0.5 * np.sum(gap == 0.0))
    low, high = wilson_interval(agreed, decisions, confidence)
    worst = np.argsort(gap, kind="stable")[:disagreements]
    human_judges = np.asarray(judges, dtype=object)[human]
    return AgreementReport(
        decisions,
        agreed / decisions,
        low,
        high,
        confidence,
        [
            Disagreement(
                int(chosen[k]),
                int(other[k]),
                str(human_judges[k]),
                float(expit(gap[k])),
            )
            for k in worst
        ],
    )


@dataclass(frozen=True, slots=True)
class HumanCounts:
    """A batch's human judging in counts: judges invited, comparisons given to them, judged,
    and released unjudged at the deadline."""

    invited: int
    assigned: int
    judged: int
    released: int


def human_judging_statistics(
    comparisons: Comparisons,
    fit: BradleyTerryFit,
    judges: tuple[npt.NDArray[np.bool_], list[str]] | None,
    *,
    ai_fit: BradleyTerryFit | None,
    essay_ids: Sequence[str],
    counts: HumanCounts,
) -> HumanJudgingStatistics:
    """The completed event's report on human judges: every judge's misfit at the joint fit
    `fit`, the AI-human agreement against the AI-only fit `ai_fit`, the humans' order effect
    and the decisions of largest disagreement (by essay id)."""
    report = HumanJudgingStatistics(
        judges_invited=counts.invited,
        assigned=counts.assigned,
        judged=counts.judged,
        released=counts.released,
    )
    if judges is None or len(comparisons) == 0:
        return report
    human, judge_ids = judges
    misfit = judge_misfit(comparisons, fit, judge_ids, human)
    kind = {j: ("human" if h else "llm") for j, h in zip(judge_ids, human.tolist(), strict=True)}
    agreement = (
        ai_human_agreement(comparisons, human, judge_ids, ai_fit=ai_fit)
        if ai_fit is not None
        else None
    )
    biases = fit.position_biases
    return report.model_copy(
        update={
            "judges": [
                JudgeFitStatistics(
                    judge_id=m.judge,
                    kind=kind[m.judge],
                    judgements=m.judgements,
                    infit=round(m.infit, 6),
                    outfit=round(m.outfit, 6),
                    infit_z=round(m.infit_z, 6),
                    flagged=m.flagged,
                )
                for m in misfit
            ],
            "human_position_bias_logit": (
                round(float(biases[HUMAN_GROUP]), 6)
                if biases is not None and biases.shape[0] > HUMAN_GROUP
                else None
            ),
            **(
                {}
                if agreement is None
                else {
                    "agreement": round(agreement.agreement, 6),
                    "agreement_low": round(agreement.low, 6),
                    "agreement_high": round(agreement.high, 6),
                    "agreement_confidence": agreement.confidence,
                    "largest_disagreements": [
                        HumanDisagreement(
                            chosen_essay_id=essay_ids[d.chosen],
                            other_essay_id=essay_ids[d.other],
                            judge_id=d.judge,
                            ai_probability=round(d.ai_probability, 6),
                        )
                        for d in agreement.largest_disagreements
                        if d.ai_probability < 0.5  # the AI orders the pair the other way
                    ],
                }
            ),
        }
    )
