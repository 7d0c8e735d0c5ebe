"""The assignments the cost benchmark runs a CJ batch of: the repository's sample, and a
source-based assignment of realistic length (`source_assignment.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.llm_provider import source_assignment
from huleedu_cli.inputs import load_essays

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "samples"


@dataclass(frozen=True)
class Scenario:
    """An assignment: what the students were asked, how essays are judged, and the essays."""

    name: str
    description: str
    instructions: str
    rubric: str
    essays: tuple[str, ...]

    def essay(self, number: int) -> str:
        """Student `number`'s essay, under its own header (the essays are cycled if fewer)."""
        return f"Student {number}.\n\n{self.essays[number % len(self.essays)]}"


def sample_scenario() -> Scenario:
    """The repository's sample assignment: a short prompt and rubric, 24 short essays."""
    essays = load_essays(SAMPLES / "essays")
    return Scenario(
        name="sample",
        description=(
            "the repository's sample assignment (samples/): a 150-word prompt, a 250-word "
            "rubric and 24 sample essays of 150-350 words, each used four or five times"
        ),
        instructions=(SAMPLES / "prompt.md").read_text(encoding="utf-8"),
        rubric=(SAMPLES / "rubric.md").read_text(encoding="utf-8"),
        essays=tuple(essay.text_content for essay in essays),
    )


def source_based_scenario(essay_count: int) -> Scenario:
    """A source-based assignment: the task with a 900-word source text, a full analytic
    marking scheme, and `essay_count` essays of about 550 words."""
    return Scenario(
        name="source_based",
        description=(
            f"a source-based assignment ({source_assignment.TITLE}): the task and a "
            "900-word source text as the instructions, a four-criterion analytic marking "
            "scheme with level descriptors as the rubric, essays of about 550 words"
        ),
        instructions=source_assignment.instructions(),
        rubric=source_assignment.MARKING_SCHEME,
        essays=tuple(source_assignment.source_essay(i) for i in range(essay_count)),
    )
