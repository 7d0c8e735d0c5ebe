"""Reference passages in assessment definitions, and the terms a rag retrieval searches for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from submission_service.domain.assessments import AssessmentDefinition, PassageKind
from submission_service.domain.retrieval import search_terms

SHIPPED = Path(__file__).resolve().parents[3] / "content" / "intro-writing.json"


def _definition(passages: list[dict[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SHIPPED.read_text("utf-8"))
    document["reference_passages"] = passages
    return document


class TestDefinitions:
    def test_the_shipped_definition_names_passages_of_every_kind_for_its_essay(self) -> None:
        definition = AssessmentDefinition.model_validate_json(SHIPPED.read_text("utf-8"))
        passages = definition.passages_for("short-essay")
        assert {p.kind for p in passages} == set(PassageKind)
        assert definition.passages_for("thesis-definition") == []

    def test_a_passage_must_name_an_essay_question_of_the_definition(self) -> None:
        passage = {"id": "p1", "kind": "key_point", "question_ids": ["thesis-definition"]}
        with pytest.raises(ValidationError, match="not essay questions"):
            AssessmentDefinition.model_validate(_definition([{**passage, "text": "A point."}]))

    def test_passage_ids_are_unique(self) -> None:
        passage = {"id": "p1", "kind": "key_point", "question_ids": ["short-essay"], "text": "x"}
        with pytest.raises(ValidationError, match="appears twice"):
            AssessmentDefinition.model_validate(_definition([passage, passage]))

    def test_a_definition_without_passages_is_valid(self) -> None:
        document = _definition([])
        del document["reference_passages"]
        assert AssessmentDefinition.model_validate(document).reference_passages == ()


class TestSearchTerms:
    def test_words_of_the_question_then_the_answer_once_each_in_lower_case(self) -> None:
        terms = search_terms("Should schools go digital?", "Digital books: cheaper, 2024!")
        assert terms == ["should", "schools", "digital", "books", "cheaper"]

    def test_only_letters_so_every_term_is_a_valid_tsquery_operand(self) -> None:
        terms = search_terms("a & b | !c <-> 'quoted' (x:*) e-mail don't")
        assert all(t.isalpha() for t in terms)
        assert terms == ["quoted", "mail", "don"]

    def test_the_number_of_terms_is_capped(self) -> None:
        text = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}" for i in range(600))
        assert len(search_terms(text, limit=50)) == 50
