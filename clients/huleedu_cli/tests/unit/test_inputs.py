from __future__ import annotations

import csv
from pathlib import Path

import pytest

from huleedu_cli.errors import InputError
from huleedu_cli.inputs import (
    check_unique_ids,
    load_anchors,
    load_essays,
    load_intended_order,
)

SAMPLES = Path(__file__).resolve().parents[4] / "samples"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestFolderOfEssays:
    def test_txt_and_md_files_become_essays_named_by_stem_in_name_order(
        self, tmp_path: Path
    ) -> None:
        write(tmp_path / "b.txt", "  Second essay.\n")
        write(tmp_path / "a.md", "First essay.")
        write(tmp_path / "notes.json", "{}")
        write(tmp_path / ".hidden.txt", "ignored")

        essays = load_essays(tmp_path)

        assert [(e.essay_id, e.text_content) for e in essays] == [
            ("a", "First essay."),
            ("b", "Second essay."),
        ]

    def test_missing_folder_is_reported(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="not found"):
            load_essays(tmp_path / "nowhere")

    def test_folder_without_essay_files_is_reported(self, tmp_path: Path) -> None:
        write(tmp_path / "readme.json", "{}")
        with pytest.raises(InputError, match="no essays found"):
            load_essays(tmp_path)

    def test_empty_essay_is_reported_with_its_file_name(self, tmp_path: Path) -> None:
        write(tmp_path / "ok.txt", "Some text.")
        write(tmp_path / "blank.txt", "  \n\n")
        with pytest.raises(InputError, match=r"empty: .*blank\.txt"):
            load_essays(tmp_path)

    def test_same_stem_twice_is_a_duplicate_id(self, tmp_path: Path) -> None:
        write(tmp_path / "e1.txt", "One.")
        write(tmp_path / "e1.md", "Two.")
        with pytest.raises(InputError, match="duplicate essay id 'e1'"):
            load_essays(tmp_path)

    def test_non_utf8_file_is_reported(self, tmp_path: Path) -> None:
        (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
        with pytest.raises(InputError, match=r"not UTF-8 text: .*latin\.txt"):
            load_essays(tmp_path)

    def test_a_file_that_is_neither_folder_nor_csv_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(InputError, match="expected a folder"):
            load_essays(write(tmp_path / "essay.txt", "text"))


class TestCsvOfEssays:
    def test_rows_become_essays_and_quoted_text_may_span_lines(self, tmp_path: Path) -> None:
        path = tmp_path / "essays.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["essay_id", "text"])
            writer.writerow(["x1", "First paragraph.\n\nSecond, with a comma."])
            writer.writerow(["x2", "Short."])

        essays = load_essays(path)

        assert [e.essay_id for e in essays] == ["x1", "x2"]
        assert essays[0].text_content == "First paragraph.\n\nSecond, with a comma."

    def test_text_content_column_is_accepted(self, tmp_path: Path) -> None:
        path = write(tmp_path / "e.csv", "essay_id,text_content\na,Hello there.\n")
        assert load_essays(path)[0].text_content == "Hello there."

    def test_missing_columns_are_named(self, tmp_path: Path) -> None:
        path = write(tmp_path / "e.csv", "id,body\na,Hello.\n")
        with pytest.raises(InputError, match="needs the columns essay_id and text"):
            load_essays(path)

    def test_empty_text_names_the_record_and_essay(self, tmp_path: Path) -> None:
        path = write(tmp_path / "e.csv", "essay_id,text\na,Hello.\nb,   \n")
        with pytest.raises(InputError, match="record 2: essay 'b' has empty text"):
            load_essays(path)

    def test_duplicate_ids_are_reported(self, tmp_path: Path) -> None:
        path = write(tmp_path / "e.csv", "essay_id,text\na,One.\na,Two.\n")
        with pytest.raises(InputError, match="duplicate essay id 'a'"):
            load_essays(path)

    def test_header_only_csv_has_no_essays(self, tmp_path: Path) -> None:
        path = write(tmp_path / "e.csv", "essay_id,text\n")
        with pytest.raises(InputError, match="no essays found"):
            load_essays(path)


class TestAnchorsAndIntendedOrder:
    def test_anchors_pair_grades_with_files(self, tmp_path: Path) -> None:
        write(tmp_path / "grades.csv", "essay_id,grade\nanc1,A\nanc2,D\n")
        write(tmp_path / "anc1.txt", "Strong anchor.")
        write(tmp_path / "anc2.txt", "Weak anchor.")

        anchors = load_anchors(tmp_path)

        assert [(a.essay_id, a.grade) for a in anchors] == [("anc1", "A"), ("anc2", "D")]

    def test_anchor_without_file_is_reported(self, tmp_path: Path) -> None:
        write(tmp_path / "grades.csv", "essay_id,grade\nanc9,B\n")
        with pytest.raises(InputError, match=r"anc9.*no anc9\.txt"):
            load_anchors(tmp_path)

    def test_anchor_folder_without_grades_is_reported(self, tmp_path: Path) -> None:
        write(tmp_path / "anc1.txt", "text")
        with pytest.raises(InputError, match=r"grades\.csv"):
            load_anchors(tmp_path)

    def test_anchor_ids_may_not_collide_with_essay_ids(self, tmp_path: Path) -> None:
        write(tmp_path / "essays" / "s1.txt", "Essay.")
        write(tmp_path / "anchors" / "grades.csv", "essay_id,grade\ns1,A\n")
        write(tmp_path / "anchors" / "s1.txt", "Anchor.")
        with pytest.raises(InputError, match="anchor ids also used by essays: s1"):
            check_unique_ids(load_essays(tmp_path / "essays"), load_anchors(tmp_path / "anchors"))

    def test_intended_order_reads_rank_and_grade(self, tmp_path: Path) -> None:
        path = write(tmp_path / "o.csv", "essay_id,intended_rank,intended_grade\na,1,A\nb,2,\n")
        order = load_intended_order(path)
        assert (order["a"].rank, order["a"].grade) == (1, "A")
        assert (order["b"].rank, order["b"].grade) == (2, None)

    def test_intended_rank_must_be_a_number(self, tmp_path: Path) -> None:
        path = write(tmp_path / "o.csv", "essay_id,intended_rank\na,first\n")
        with pytest.raises(InputError, match="intended_rank is not a whole number"):
            load_intended_order(path)


class TestProjectSamples:
    """The sample set shipped in samples/ is complete and consistent."""

    def test_folder_csv_and_intended_order_describe_the_same_essays(self) -> None:
        folder = load_essays(SAMPLES / "essays")
        from_csv = load_essays(SAMPLES / "essays.csv")
        order = load_intended_order(SAMPLES / "intended_order.csv")

        assert len(folder) >= 24
        assert [(e.essay_id, e.text_content) for e in folder] == [
            (e.essay_id, e.text_content) for e in from_csv
        ]
        assert set(order) == {e.essay_id for e in folder}
        assert sorted(p.rank for p in order.values()) == list(range(1, len(folder) + 1))
        assert {p.grade for p in order.values()} <= set("ABCDEF")

    def test_essays_are_short_and_anchors_are_graded(self) -> None:
        for essay in load_essays(SAMPLES / "essays"):
            words = len(essay.text_content.split())
            assert 120 <= words <= 350, (essay.essay_id, words)
        anchors = load_anchors(SAMPLES / "anchors")
        assert 3 <= len(anchors) <= 4
        check_unique_ids(load_essays(SAMPLES / "essays"), anchors)
