from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from rich.console import Console

from common_core.events import CJAssessmentCompletedV1, ResourceUsage
from common_core.events.cj import (
    HumanDisagreement,
    HumanJudgingStatistics,
    JudgeFitStatistics,
    JudgeIdentity,
)
from huleedu_cli.inputs import IntendedPlacement
from huleedu_cli.report import (
    RANKING_COLUMNS,
    order_agreement,
    render_ranking,
    write_chart,
    write_ranking_csv,
    write_result_json,
)
from huleedu_cli.tests.factories import completed_event

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def intended(*ids: str) -> dict[str, IntendedPlacement]:
    grades = "ABCDEF"
    return {
        essay_id: IntendedPlacement(essay_id=essay_id, rank=i + 1, grade=grades[i % 6])
        for i, essay_id in enumerate(ids)
    }


class TestOrderAgreement:
    def test_same_order_is_perfect_agreement(self) -> None:
        agreement = order_agreement(completed_event(), intended("e1", "e2", "e3", "e4"))
        assert agreement is not None
        assert agreement.spearman_rho == pytest.approx(1.0)
        assert agreement.essays_compared == 4

    def test_reversed_order_is_perfect_disagreement(self) -> None:
        agreement = order_agreement(completed_event(), intended("e4", "e3", "e2", "e1"))
        assert agreement is not None
        assert agreement.spearman_rho == pytest.approx(-1.0)

    def test_only_essays_known_to_both_count_and_fewer_than_three_give_none(self) -> None:
        assert order_agreement(completed_event(), intended("e1", "e2", "zz")) is None


class TestFiles:
    def test_csv_lists_every_essay_best_first_with_intended_placement(self, tmp_path: Path) -> None:
        path = tmp_path / "out" / "ranking.csv"
        write_ranking_csv(path, completed_event(), intended("e2", "e1", "e3", "e4"))

        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
        assert tuple(reader.fieldnames or ()) == RANKING_COLUMNS
        assert [r["essay_id"] for r in rows] == ["e1", "e2", "e3", "e4"]
        assert rows[0]["rank"] == "1"
        assert float(rows[0]["score"]) == pytest.approx(1.5)
        assert float(rows[0]["standard_error"]) == pytest.approx(0.4)
        assert rows[0]["wins"] == "3"
        assert (rows[0]["intended_rank"], rows[0]["intended_grade"]) == ("2", "B")
        assert rows[0]["predicted_grade"] == ""

    def test_json_is_the_completed_payload_plus_agreement(self, tmp_path: Path) -> None:
        completed = completed_event()
        path = tmp_path / "result.json"
        write_result_json(path, completed, intended("e1", "e2", "e3", "e4"))

        document = json.loads(path.read_text(encoding="utf-8"))
        assert CJAssessmentCompletedV1.model_validate(document) == completed
        assert document["intended_order_agreement"]["spearman_rho"] == pytest.approx(1.0)
        assert document["intended_order_agreement"]["essays_compared"] == 4

    def test_json_without_intended_order_has_no_agreement(self, tmp_path: Path) -> None:
        path = tmp_path / "result.json"
        write_result_json(path, completed_event())
        assert "intended_order_agreement" not in json.loads(path.read_text(encoding="utf-8"))

    def test_chart_is_a_png(self, tmp_path: Path) -> None:
        path = tmp_path / "charts" / "scores.png"
        write_chart(path, completed_event(essay_ids=[f"s{i:02d}" for i in range(1, 25)]))
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        assert path.stat().st_size > 5_000


class TestConsoleReport:
    def test_table_shows_scores_with_errors_and_reliability(self) -> None:
        console = Console(record=True, width=120)
        render_ranking(console, completed_event(), intended("e1", "e2", "e3", "e4"))
        text = console.export_text()

        assert "+1.50 ± 0.40" in text
        assert "scale separation reliability: 0.91" in text
        assert "split-half reliability: 0.87" in text
        assert "position bias: 0.05 ± 0.12 logits" in text
        assert "Spearman rho 1.000 over 4 essays" in text
        assert text.index("e1") < text.index("e4")

    def test_reliabilities_the_event_marks_not_valid_are_not_shown_as_figures(self) -> None:
        event = completed_event()
        adaptive = event.model_copy(
            update={
                "statistics": event.statistics.model_copy(
                    update={
                        "posterior_reliability": 0.02,
                        "not_valid_reliabilities": [
                            "scale_separation_reliability",
                            "split_half_reliability",
                        ],
                    }
                )
            }
        )
        console = Console(record=True, width=160)
        render_ranking(console, adaptive, None)
        text = console.export_text()
        assert "scale separation reliability: not valid (adaptive pairing)" in text
        assert "split-half reliability: not valid (adaptive pairing)" in text
        assert "0.91" not in text
        assert "0.87" not in text
        assert "posterior reliability: 0.02" in text
        assert "order flips" not in text

    def test_the_order_flip_rate_is_shown_when_pairs_were_asked_both_ways(self) -> None:
        event = completed_event()
        flipped = event.model_copy(
            update={
                "statistics": event.statistics.model_copy(
                    update={"order_flip_rate": 0.25, "pairs_in_both_orders": 8}
                )
            }
        )
        console = Console(record=True, width=160)
        render_ranking(console, flipped, None)
        assert "order flips: 25% of 8 pairs asked both ways" in console.export_text()

    def test_soft_and_hard_verdicts_are_counted_when_the_event_says(self) -> None:
        event = completed_event()
        answered = event.system_metadata.resource_usage.completed_comparisons
        soft = event.model_copy(
            update={"statistics": event.statistics.model_copy(update={"soft_verdicts": 3})}
        )
        console = Console(record=True, width=160)
        render_ranking(console, soft, None)
        expected = f"verdicts: 3 soft (with the judge's probability), {answered - 3} hard"
        assert expected in console.export_text()
        console = Console(record=True, width=160)
        render_ranking(console, event, None)
        assert "soft (with" not in console.export_text()

    def test_the_judge_and_estimated_cost_are_shown_and_an_unknown_cost_says_so(self) -> None:
        event = completed_event()
        metadata = event.system_metadata.model_copy(
            update={
                "judges": [
                    JudgeIdentity(
                        provider="openai",
                        model="gpt-4o-mini",
                        prompt_version="comparison_v1",
                        comparisons=6,
                    )
                ],
                "resource_usage": ResourceUsage(
                    prompt_tokens=9000, cached_prompt_tokens=4000, estimated_cost_usd=0.0021
                ),
            }
        )
        console = Console(record=True, width=160)
        render_ranking(console, event.model_copy(update={"system_metadata": metadata}), None)
        text = console.export_text()
        assert "judged by: openai/gpt-4o-mini (comparison_v1)" in text
        assert "estimated cost: $0.0021" in text
        assert "9000 prompt (4000 cached)" in text

        unpriced = metadata.model_copy(
            update={
                "resource_usage": ResourceUsage(prompt_tokens=9000, unpriced_comparisons=6),
            }
        )
        console = Console(record=True, width=160)
        render_ranking(console, event.model_copy(update={"system_metadata": unpriced}), None)
        assert "estimated cost: unknown (6 answers from unpriced models)" in console.export_text()

    def test_the_stop_rule_figures_and_partial_scoring_are_shown_when_present(self) -> None:
        event = completed_event()
        newer = event.model_copy(
            update={
                "statistics": event.statistics.model_copy(
                    update={"posterior_reliability": 0.83, "target_reliability": 0.9}
                ),
                "partial_scoring_triggered": True,
            }
        )
        console = Console(record=True, width=120)
        render_ranking(console, newer, None)
        text = console.export_text()
        assert "posterior reliability: 0.83   stop target: 0.90" in text
        assert "partial scoring: some answers were still missing" in text
        render_ranking(console, event, None)
        assert console.export_text().count("posterior reliability") == 0

    def test_an_event_without_the_bias_error_shows_the_bias_alone(self) -> None:
        event = completed_event()
        older = event.model_copy(
            update={
                "statistics": event.statistics.model_copy(
                    update={"position_bias_standard_error": None}
                )
            }
        )
        console = Console(record=True, width=120)
        render_ranking(console, older, None)
        assert "position bias: 0.05 logits" in console.export_text()


def test_the_human_judges_section_shows_agreement_misfit_and_disagreements() -> None:
    base = completed_event()
    people = HumanJudgingStatistics(
        judges_invited=2,
        assigned=12,
        judged=9,
        released=3,
        agreement=0.78,
        agreement_low=0.45,
        agreement_high=0.94,
        agreement_confidence=0.95,
        human_position_bias_logit=0.1,
        judges=[
            JudgeFitStatistics(
                judge_id="t-ada", kind="human", judgements=5, infit=0.9, outfit=0.8,
                infit_z=-0.2, flagged=False,
            ),
            JudgeFitStatistics(
                judge_id="t-bo", kind="human", judgements=4, infit=2.4, outfit=3.1,
                infit_z=2.6, flagged=True,
            ),
        ],
        largest_disagreements=[
            HumanDisagreement(
                chosen_essay_id="e4", other_essay_id="e1", judge_id="t-bo", ai_probability=0.08
            )
        ],
        left_out_of_ranking=["t-bo"],
    )  # fmt: skip
    completed = base.model_copy(
        update={
            "statistics": base.statistics.model_copy(update={"human_judging": people}),
            "completion_detail": "3 of 12 comparisons given to human judges were released",
        }
    )
    console = Console(record=True, width=200)
    render_ranking(console, completed, None)
    text = console.export_text()
    assert "human judges: 2 invited, 12 comparisons given, 9 judged, 3 released" in text
    assert "AI-human agreement: 78% of 9 human decisions (95% interval 0.45-0.94)" in text
    assert "judge t-bo (human): 4 decisions, infit 2.40, outfit 3.10  MISFIT (left out" in text
    assert "t-bo chose e4 over e1; the AI gives that 8%" in text
    assert "note: 3 of 12 comparisons given to human judges were released" in text
