"""Grade projection from anchor essays with known grades placed on the same scale.

Grades are ordered by the mean fitted score of their anchors; the boundary between two adjacent
grades is the midpoint of those means. An essay's grade probabilities integrate a normal
centred on its score (spread = its standard error, floored) over each grade's interval, so
essays near a boundary get split probabilities rather than a one-hot answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

MIN_SPREAD = 0.25


@dataclass(frozen=True, slots=True)
class ProjectedGrade:
    """One essay's most likely grade and the probability of every grade."""

    predicted_grade: str
    probabilities: dict[str, float]
    confidence: float


def grade_scale(anchor_scores: dict[str, list[float]]) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Grades ordered from lowest to highest anchor mean, and the boundaries between them."""
    means = {grade: float(np.mean(values)) for grade, values in anchor_scores.items() if values}
    grades = sorted(means, key=lambda g: (means[g], g))
    centres = np.array([means[g] for g in grades], dtype=np.float64)
    boundaries = (centres[:-1] + centres[1:]) / 2.0
    return grades, boundaries


def project_grades(
    scores: npt.NDArray[np.float64],
    standard_errors: npt.NDArray[np.float64],
    anchor_scores: dict[str, list[float]],
) -> list[ProjectedGrade]:
    """Probabilities over the anchor grades for each essay score (empty without anchors)."""
    grades, boundaries = grade_scale(anchor_scores)
    if not grades:
        return []
    spread = np.maximum(standard_errors, MIN_SPREAD)[:, None]
    edges = np.concatenate([[-np.inf], boundaries, [np.inf]])[None, :]
    cumulative = ndtr((edges - scores[:, None]) / spread)
    probabilities = np.clip(np.diff(cumulative, axis=1), 0.0, 1.0)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    projected: list[ProjectedGrade] = []
    for row in probabilities:
        best = int(np.argmax(row))
        projected.append(
            ProjectedGrade(
                predicted_grade=grades[best],
                probabilities={g: round(float(p), 6) for g, p in zip(grades, row, strict=True)},
                confidence=round(float(row[best]), 6),
            )
        )
    return projected
