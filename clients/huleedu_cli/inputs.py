"""Loading what the user points the CLI at: essays (a folder or a CSV), anchors, texts, orders.

Every problem is reported as an `InputError` that names the file (and row) at fault.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from common_core.events import AnchorEssay, EssayToProcess
from huleedu_cli.errors import InputError

ESSAY_SUFFIXES = (".txt", ".md")
GRADES_FILE = "grades.csv"
_TEXT_COLUMNS = ("text", "text_content")


@dataclass(frozen=True, slots=True)
class IntendedPlacement:
    """Where the author of a sample set meant an essay to land."""

    essay_id: str
    rank: int
    grade: str | None


def read_text_file(path: Path, *, what: str) -> str:
    """The UTF-8 text of a file, or an InputError that says which file and why."""
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if not path.is_file():
        raise InputError(f"{what} is not a file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text: {path} ({exc.reason})") from exc


def load_essays(path: Path) -> list[EssayToProcess]:
    """Essays from a folder of .txt/.md files (id = file stem) or from a CSV (essay_id,text)."""
    if not path.exists():
        raise InputError(f"essay folder or CSV not found: {path}")
    if path.is_dir():
        essays = _essays_from_folder(path)
    elif path.suffix.lower() == ".csv":
        essays = _essays_from_csv(path)
    else:
        raise InputError(f"expected a folder of .txt/.md essays or a .csv file, got: {path}")
    if not essays:
        raise InputError(f"no essays found in {path}")
    return essays


def _essay_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in ESSAY_SUFFIXES
    )


def _essays_from_folder(folder: Path) -> list[EssayToProcess]:
    essays: list[EssayToProcess] = []
    seen: dict[str, Path] = {}
    for file in _essay_files(folder):
        essay_id = file.stem
        if essay_id in seen:
            raise InputError(f"duplicate essay id {essay_id!r}: {seen[essay_id]} and {file}")
        seen[essay_id] = file
        text = read_text_file(file, what="essay file").strip()
        if not text:
            raise InputError(f"essay file is empty: {file}")
        essays.append(EssayToProcess(essay_id=essay_id, text_content=text))
    return essays


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and non-blank rows of a CSV; quoted fields may span lines (essays do)."""
    raw = read_text_file(path, what="CSV file")
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [
            {(k or "").strip(): v if isinstance(v, str) else "" for k, v in row.items()}
            for row in reader
        ]
    except csv.Error as exc:
        raise InputError(f"{path} is not a readable CSV: {exc}") from exc
    return columns, [r for r in rows if any(v.strip() for v in r.values())]


def _read_csv_rows(path: Path, *, required: tuple[str, ...]) -> list[dict[str, str]]:
    columns, rows = _read_csv(path)
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)} (has: {', '.join(columns)})")
    return rows


def _essays_from_csv(path: Path) -> list[EssayToProcess]:
    columns, rows = _read_csv(path)
    text_column = next((c for c in _TEXT_COLUMNS if c in columns), None)
    if "essay_id" not in columns or text_column is None:
        raise InputError(f"{path} needs the columns essay_id and text (has: {', '.join(columns)})")
    essays: list[EssayToProcess] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        essay_id = row.get("essay_id", "").strip()
        where = f"{path} record {number}"
        if not essay_id:
            raise InputError(f"{where}: essay_id is empty")
        if essay_id in seen:
            raise InputError(
                f"{where}: duplicate essay id {essay_id!r} (first in record {seen[essay_id]})"
            )
        seen[essay_id] = number
        text = row.get(text_column, "").strip()
        if not text:
            raise InputError(f"{where}: essay {essay_id!r} has empty text")
        essays.append(EssayToProcess(essay_id=essay_id, text_content=text))
    return essays


def load_anchors(folder: Path) -> list[AnchorEssay]:
    """Anchor essays: `<folder>/grades.csv` (essay_id,grade) plus one `<essay_id>.txt|.md` each."""
    if not folder.is_dir():
        raise InputError(f"anchor folder not found: {folder}")
    rows = _read_csv_rows(folder / GRADES_FILE, required=("essay_id", "grade"))
    files = {p.stem: p for p in _essay_files(folder)}
    anchors: list[AnchorEssay] = []
    for line, row in enumerate(rows, start=1):
        essay_id, grade = row["essay_id"].strip(), row["grade"].strip()
        if not essay_id or not grade:
            raise InputError(
                f"{folder / GRADES_FILE} record {line}: essay_id and grade are required"
            )
        if essay_id not in files:
            raise InputError(f"anchor {essay_id!r} has a grade but no {essay_id}.txt in {folder}")
        text = read_text_file(files[essay_id], what="anchor file").strip()
        if not text:
            raise InputError(f"anchor file is empty: {files[essay_id]}")
        anchors.append(AnchorEssay(essay_id=essay_id, text_content=text, grade=grade))
    if not anchors:
        raise InputError(f"no anchors listed in {folder / GRADES_FILE}")
    return anchors


def load_intended_order(path: Path) -> dict[str, IntendedPlacement]:
    """The intended order of a sample set: `essay_id,intended_rank[,intended_grade]`."""
    rows = _read_csv_rows(path, required=("essay_id", "intended_rank"))
    placements: dict[str, IntendedPlacement] = {}
    for line, row in enumerate(rows, start=1):
        essay_id = row["essay_id"].strip()
        try:
            rank = int(row["intended_rank"])
        except ValueError as exc:
            raise InputError(f"{path} record {line}: intended_rank is not a whole number") from exc
        grade = row.get("intended_grade", "").strip() or None
        placements[essay_id] = IntendedPlacement(essay_id=essay_id, rank=rank, grade=grade)
    return placements


def check_unique_ids(essays: list[EssayToProcess], anchors: list[AnchorEssay]) -> None:
    """Anchors are judged alongside the essays, so their ids must not collide."""
    clash = sorted({e.essay_id for e in essays} & {a.essay_id for a in anchors})
    if clash:
        raise InputError(f"anchor ids also used by essays: {', '.join(clash)}")
