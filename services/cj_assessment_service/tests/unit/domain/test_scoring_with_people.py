"""Scoring a batch judged by the AI and by people: one fit, their report, a misfit left out."""

from __future__ import annotations

import numpy as np

from cj_assessment_service.domain.bradley_terry import Comparisons
from cj_assessment_service.domain.judge_fit import HumanCounts
from cj_assessment_service.domain.scoring import ScoredEssay, score_batch

N = 30


def _batch(seed: int) -> tuple[Comparisons, np.ndarray, list[str]]:
    """AI verdicts that follow the truth (essay i better than j when i > j) with some noise,
    an honest teacher who does the same, and one who always picks the worse essay."""
    rng = np.random.default_rng(seed)
    a, b, won, judges = [], [], [], []
    for _ in range(12 * N):
        i, j = (int(x) for x in rng.choice(N, 2, replace=False))
        a.append(i)
        b.append(j)
        won.append(bool(rng.random() < 1 / (1 + np.exp(-(i - j) / 3))))
        judges.append("openai:gpt")
    for k in range(120):
        i, j = (int(x) for x in rng.choice(N, 2, replace=False))
        teacher = "t-honest" if k % 2 else "t-contrary"
        a.append(i)
        b.append(j)
        won.append((i > j) if teacher == "t-honest" else (i < j))
        judges.append(teacher)
    comparisons = Comparisons.from_lists(N, a, b, won)
    return comparisons, np.array([j != "openai:gpt" for j in judges]), judges


def test_people_are_reported_and_a_contrary_teacher_is_left_out_of_the_ranking() -> None:
    comparisons, human, judges = _batch(0)
    essays = [ScoredEssay(f"e{i}") for i in range(N)]
    scored = score_batch(
        essays,
        comparisons,
        judges=(human, judges),
        human_counts=HumanCounts(invited=2, assigned=120, judged=120, released=0),
    )
    report = scored.statistics.human_judging
    assert report is not None
    flagged = {j.judge_id for j in report.judges if j.flagged}
    assert flagged == {"t-contrary"}
    assert report.left_out_of_ranking == ["t-contrary"]
    assert {j.judge_id: j.kind for j in report.judges}["openai:gpt"] == "llm"
    # Half the decisions agree with the AI (the honest teacher's), half do not.
    assert report.agreement is not None
    assert 0.35 < report.agreement < 0.65
    assert report.largest_disagreements
    assert {d.judge_id for d in report.largest_disagreements} == {"t-contrary"}
    # Left out, the contrary teacher cannot turn the ranking over: the best essays lead it.
    top = {r.essay_id for r in scored.rankings[:5]}
    assert len(top & {f"e{i}" for i in range(N - 8, N)}) >= 4


def test_without_people_the_report_is_absent_and_the_scores_unchanged() -> None:
    comparisons, human, _ = _batch(1)
    ai_only = comparisons.subset(~human)
    essays = [ScoredEssay(f"e{i}") for i in range(N)]
    plain = score_batch(essays, ai_only)
    assert plain.statistics.human_judging is None
    with_empty_report = score_batch(
        essays,
        ai_only,
        judges=(np.zeros(len(ai_only), dtype=np.bool_), ["openai:gpt"] * len(ai_only)),
        human_counts=HumanCounts(invited=1, assigned=0, judged=0, released=0),
    )
    assert with_empty_report.rankings == plain.rankings
    report = with_empty_report.statistics.human_judging
    assert report is not None
    assert (report.assigned, report.agreement) == (0, None)
