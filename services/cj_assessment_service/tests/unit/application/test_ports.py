"""The records of the ports: request settings keep their stored JSON shape."""

from __future__ import annotations

from cj_assessment_service.application.ports import RequestSettings
from common_core.events.llm import LLMConfig, LLMMode, LLMProviderName


class TestRequestSettings:
    def test_the_stored_json_has_the_same_keys_and_reads_back_equal(self) -> None:
        settings = RequestSettings(
            language="sv",
            course_code="ENG5",
            essay_instructions="Write about your summer.",
            judge_rubric="Prefer clear arguments.",
            llm_config=LLMConfig(
                provider=LLMProviderName.OPENAI, model="m", temperature=0.2, mode=LLMMode.BATCH
            ),
            max_comparisons=40,
            target_reliability=0.85,
        )
        stored = settings.to_json()
        assert stored == {
            "language": "sv",
            "course_code": "ENG5",
            "essay_instructions": "Write about your summer.",
            "judge_rubric": "Prefer clear arguments.",
            "llm_config": {
                "provider": "openai",
                "model": "m",
                "temperature": 0.2,
                "max_tokens": None,
                "mode": "batch",
            },
            "max_comparisons": 40,
            "target_reliability": 0.85,
        }
        assert RequestSettings.from_json(stored) == settings

    def test_an_old_or_partial_row_loads_with_the_request_defaults(self) -> None:
        assert RequestSettings.from_json({}) == RequestSettings()
        partial = RequestSettings.from_json({"language": None, "llm_config": None})
        assert (partial.language, partial.essay_instructions) == ("en", "")
        assert partial.llm_config == LLMConfig()
