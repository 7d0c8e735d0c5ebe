"""Presenting a completed CJ batch: a rich table, reliability figures, CSV, JSON and a chart."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from common_core.events import CJAssessmentCompletedV1, CJStatistics, EssayRanking
from huleedu_cli.inputs import IntendedPlacement

RANKING_COLUMNS = (
    "rank",
    "essay_id",
    "score",
    "standard_error",
    "comparisons",
    "wins",
    "predicted_grade",
    "intended_rank",
    "intended_grade",
)


@dataclass(frozen=True, slots=True)
class OrderAgreement:
    """How well the fitted ranking matches an intended order (Spearman's rank correlation)."""

    spearman_rho: float
    p_value: float
    essays_compared: int


def order_agreement(
    completed: CJAssessmentCompletedV1, intended: Mapping[str, IntendedPlacement]
) -> OrderAgreement | None:
    """Spearman's rho between fitted and intended ranks over the essays both know (n >= 3)."""
    from scipy.stats import spearmanr

    pairs = [
        (r.rank, intended[r.essay_id].rank) for r in completed.rankings if r.essay_id in intended
    ]
    if len(pairs) < 3:
        return None
    fitted, wanted = zip(*pairs, strict=True)
    result = spearmanr(fitted, wanted)
    rho, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(rho):
        return None
    return OrderAgreement(spearman_rho=rho, p_value=p_value, essays_compared=len(pairs))


def _predicted_grades(completed: CJAssessmentCompletedV1) -> dict[str, str]:
    return {g.essay_id: g.predicted_grade for g in completed.grade_projections or []}


def ranking_rows(
    completed: CJAssessmentCompletedV1,
    intended: Mapping[str, IntendedPlacement] | None = None,
) -> list[dict[str, Any]]:
    """One row per essay, best first, with the columns of `RANKING_COLUMNS`."""
    grades = _predicted_grades(completed)
    intended = intended or {}
    rows = []
    for ranking in sorted(completed.rankings, key=lambda r: r.rank):
        placement = intended.get(ranking.essay_id)
        rows.append(
            {
                "rank": ranking.rank,
                "essay_id": ranking.essay_id,
                "score": round(ranking.score, 4),
                "standard_error": (
                    None if ranking.standard_error is None else round(ranking.standard_error, 4)
                ),
                "comparisons": ranking.comparisons,
                "wins": ranking.wins,
                "predicted_grade": grades.get(ranking.essay_id),
                "intended_rank": placement.rank if placement else None,
                "intended_grade": placement.grade if placement else None,
            }
        )
    return rows


def _figure(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _plus_minus(standard_error: float | None) -> str:
    return "" if standard_error is None else f" ± {standard_error:.2f}"


def _score_text(ranking: EssayRanking) -> str:
    if ranking.standard_error is None:
        return f"{ranking.score:+.2f}"
    return f"{ranking.score:+.2f} ± {ranking.standard_error:.2f}"


def render_ranking(
    console: Console,
    completed: CJAssessmentCompletedV1,
    intended: Mapping[str, IntendedPlacement] | None = None,
) -> None:
    """Print the ranking table and the batch's statistics."""
    grades = _predicted_grades(completed)
    intended = intended or {}
    table = Table(title=f"CJ ranking · {completed.entity_ref}", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("essay")
    table.add_column("score ± SE (logits)", justify="right")
    table.add_column("comparisons", justify="right")
    table.add_column("wins", justify="right")
    if grades:
        table.add_column("grade")
    if intended:
        table.add_column("intended", justify="right")
    for ranking in sorted(completed.rankings, key=lambda r: r.rank):
        cells = [
            str(ranking.rank),
            ranking.essay_id,
            _score_text(ranking),
            str(ranking.comparisons),
            str(ranking.wins),
        ]
        if grades:
            cells.append(grades.get(ranking.essay_id, "-"))
        if intended:
            placement = intended.get(ranking.essay_id)
            cells.append(
                "-" if placement is None else f"{placement.rank} ({placement.grade or '?'})"
            )
        table.add_row(*cells)
    console.print(table)
    for line in statistics_lines(completed, intended):
        console.print(line)


def _cost_line(completed: CJAssessmentCompletedV1) -> str:
    """Who judged and what it cost (unknown when an answer's model had no price)."""
    usage = completed.system_metadata.resource_usage
    judges = ", ".join(
        f"{j.provider}/{j.model}" + (f" ({j.prompt_version})" if j.prompt_version else "")
        for j in completed.system_metadata.judges
    )
    if usage.estimated_cost_usd is not None:
        cost = f"${usage.estimated_cost_usd:.4f}"
    else:
        cost = f"unknown ({usage.unpriced_comparisons} answers from unpriced models)"
    return (
        f"judged by: {judges}   estimated cost: {cost}   tokens: {usage.prompt_tokens} prompt "
        f"({usage.cached_prompt_tokens} cached), {usage.completion_tokens} completion"
    )


def _classical_reliabilities_line(stats: CJStatistics) -> str:
    """Scale separation and split-half reliability, or, where the event marks them not valid
    (adaptive pairing inflates both), a note instead of their figures."""
    not_valid = set(stats.not_valid_reliabilities or ())
    figures = [
        f"{label}: {'not valid (adaptive pairing)' if name in not_valid else _figure(value)}"
        for label, name, value in (
            (
                "scale separation reliability",
                "scale_separation_reliability",
                stats.scale_separation_reliability,
            ),
            ("split-half reliability", "split_half_reliability", stats.split_half_reliability),
        )
    ]
    return "   ".join(figures)


def statistics_lines(
    completed: CJAssessmentCompletedV1,
    intended: Mapping[str, IntendedPlacement] | None = None,
) -> list[str]:
    """The reliability and usage figures as short lines of text."""
    stats = completed.statistics
    usage = completed.system_metadata.resource_usage
    lines = [
        f"completion: {completed.completion_reason.value}   "
        f"batch: {completed.cj_assessment_job_id}",
        _classical_reliabilities_line(stats),
        f"position bias: {_figure(stats.position_bias_logit)}"
        f"{_plus_minus(stats.position_bias_standard_error)} logits   "
        f"comparisons per essay: {stats.comparisons_per_essay:.1f}",
        f"comparisons: {usage.completed_comparisons} answered, {usage.failed_comparisons} failed, "
        f"{usage.total_comparisons} planned   "
        f"time: {completed.system_metadata.processing_duration_seconds:.1f}s",
    ]
    if completed.system_metadata.judges:
        lines.append(_cost_line(completed))
    if stats.posterior_reliability is not None:
        # Events since the reliability stop: the figure adaptive pairing does not inflate.
        target = stats.target_reliability
        lines.insert(
            2,
            f"posterior reliability: {_figure(stats.posterior_reliability)}"
            + (f"   stop target: {target:.2f}" if target is not None else ""),
        )
    if stats.order_flip_rate is not None and stats.pairs_in_both_orders:
        lines.append(
            f"order flips: {stats.order_flip_rate:.0%} of {stats.pairs_in_both_orders} pairs "
            "asked both ways (the two verdicts picked the same position)"
        )
    if stats.soft_verdicts is not None and usage.completed_comparisons:
        hard = max(usage.completed_comparisons - stats.soft_verdicts, 0)
        lines.append(
            f"verdicts: {stats.soft_verdicts} soft (with the judge's probability), {hard} hard"
        )
    if stats.human_judging is not None:
        lines.extend(human_judging_lines(completed))
    if completed.completion_detail:
        lines.insert(1, f"note: {completed.completion_detail}")
    if completed.partial_scoring_triggered:
        lines.insert(1, "partial scoring: some answers were still missing")
    if intended:
        agreement = order_agreement(completed, intended)
        lines.append(
            "agreement with the intended order: "
            + (
                "too few essays in common"
                if agreement is None
                else f"Spearman rho {agreement.spearman_rho:.3f} over "
                f"{agreement.essays_compared} essays (p = {agreement.p_value:.2g})"
            )
        )
    return lines


def human_judging_lines(completed: CJAssessmentCompletedV1) -> list[str]:
    """The human judges' section: their pairs, the AI-human agreement with its interval, each
    judge's misfit, and the decisions the AI disagrees with most."""
    people = completed.statistics.human_judging
    if people is None:
        return []
    lines = [
        f"human judges: {people.judges_invited} invited, {people.assigned} comparisons given, "
        f"{people.judged} judged, {people.released} released at the deadline"
    ]
    if people.agreement is not None:
        confidence = people.agreement_confidence or 0.95
        lines.append(
            f"AI-human agreement: {people.agreement:.0%} of {people.judged} human decisions "
            f"({confidence:.0%} interval {_figure(people.agreement_low)}-"
            f"{_figure(people.agreement_high)})"
            + (
                f"   human order effect: {people.human_position_bias_logit:+.2f} logits"
                if people.human_position_bias_logit is not None
                else ""
            )
        )
    for judge in people.judges:
        flag = "  MISFIT" if judge.flagged else ""
        left_out = (
            " (left out of the ranking)" if judge.judge_id in people.left_out_of_ranking else ""
        )
        lines.append(
            f"  judge {judge.judge_id} ({judge.kind}): {judge.judgements} decisions, "
            f"infit {judge.infit:.2f}, outfit {judge.outfit:.2f}{flag}{left_out}"
        )
    for worst in people.largest_disagreements:
        lines.append(
            f"  disagreement: {worst.judge_id} chose {worst.chosen_essay_id} over "
            f"{worst.other_essay_id}; the AI gives that {worst.ai_probability:.0%}"
        )
    return lines


def write_ranking_csv(
    path: Path,
    completed: CJAssessmentCompletedV1,
    intended: Mapping[str, IntendedPlacement] | None = None,
) -> None:
    """The ranking as CSV, best first; empty cells where a figure does not apply."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RANKING_COLUMNS)
        writer.writeheader()
        for row in ranking_rows(completed, intended):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


def write_result_json(
    path: Path,
    completed: CJAssessmentCompletedV1,
    intended: Mapping[str, IntendedPlacement] | None = None,
) -> None:
    """The completed event's payload as JSON, plus `intended_order_agreement` when known."""
    document: dict[str, Any] = completed.model_dump(mode="json")
    if intended:
        agreement = order_agreement(completed, intended)
        document["intended_order_agreement"] = (
            None
            if agreement is None
            else {
                "spearman_rho": agreement.spearman_rho,
                "p_value": agreement.p_value,
                "essays_compared": agreement.essays_compared,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def write_chart(path: Path, completed: CJAssessmentCompletedV1) -> None:
    """A PNG of every essay's score with ± one standard error, best at the top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rankings = sorted(completed.rankings, key=lambda r: r.rank, reverse=True)
    labels = [r.essay_id for r in rankings]
    scores = [r.score for r in rankings]
    errors = [r.standard_error or 0.0 for r in rankings]
    positions = list(range(len(rankings)))
    figure, axes = plt.subplots(figsize=(7.5, max(2.5, 0.32 * len(rankings) + 1.2)))
    try:
        axes.errorbar(scores, positions, xerr=errors, fmt="o", capsize=3, color="#1f5fa8")
        axes.set_yticks(positions, labels)
        axes.axvline(0.0, color="#999999", linewidth=0.8, linestyle="--")
        axes.set_xlabel("Bradley-Terry score (logits), error bars ± 1 standard error")
        axes.set_title(f"CJ ranking · {completed.entity_ref}")
        axes.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=120)
    finally:
        plt.close(figure)
