"""Assessment definitions loaded from the JSON content files shipped with the service."""

from __future__ import annotations

from pathlib import Path

from submission_service.domain.assessments import AssessmentDefinition, Module, Question


class FileDefinitionCatalog:
    """Every `*.json` definition in a directory, validated once at start-up."""

    def __init__(self, definitions: dict[str, AssessmentDefinition]) -> None:
        self._definitions = definitions

    @classmethod
    def load(cls, directory: Path) -> FileDefinitionCatalog:
        """Read and validate every definition; a broken file stops the start-up."""
        definitions: dict[str, AssessmentDefinition] = {}
        for path in sorted(directory.glob("*.json")):
            definition = AssessmentDefinition.model_validate_json(path.read_text("utf-8"))
            if definition.id in definitions:
                raise ValueError(f"duplicate assessment definition id {definition.id} in {path}")
            definitions[definition.id] = definition
        return cls(definitions)

    def get(self, definition_id: str) -> AssessmentDefinition | None:
        """The definition with this id, if shipped."""
        return self._definitions.get(definition_id)

    def all(self) -> list[AssessmentDefinition]:
        """Every definition, ordered by id."""
        return [self._definitions[k] for k in sorted(self._definitions)]

    def find_question(self, module_slug: str, question_id: str) -> tuple[Module, Question] | None:
        """The question a response refers to, if any shipped definition has it."""
        for definition in self._definitions.values():
            for module, question in definition.questions():
                if module.slug == module_slug and question.id == question_id:
                    return module, question
        return None
